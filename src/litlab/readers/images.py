"""Image files or bytes decoded with Pillow and converted to one number of channels and one size, as
numpy arrays: the one decoder of litlab's images, for prediction (predict.py, serve.py) and for
training alike (data/class_folders.py wraps it in tensors), so a model is served the pixels it was
trained on. Gray conversion by torchvision's weights in float32; a resize is Pillow's antialiased
bilinear. An image of more than Pillow's Image.MAX_IMAGE_PIXELS is a bad image like a damaged one."""

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from litlab.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")  # data=image_folder's formats
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale, in float32, truncated to uint8
# Pillow modes to convert before reading the pixels: 16-bit and float gray to 8-bit, palettes and
# other colour spaces to RGB(A); the rest (L, LA, RGB, RGBA) are read as stored.
CONVERT = {"1": "L", "I;16": "L", "I": "L", "F": "L", "P": "RGBA", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB"}
FORMATS = "give a PNG, JPEG, GIF, WebP or BMP file"

# Pillow opens an image of more than Image.MAX_IMAGE_PIXELS with a warning and refuses one of more
# than twice that (a decompression bomb: a small file that decodes to gigabytes). Here both are bad
# images, at one limit: a warning would let every decoding thread hold such an image at once, and
# print a second line where a refusal is one.
TOO_LARGE = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class BadImage(ValueError):
    """Why an image does not decode; its callers say which input it was."""


class UnknownFormat(BadImage):
    """No format Pillow knows: not an image at all, or one of a format it does not read."""


def images_in(folder: Path) -> list[Path]:
    """The image files in `folder` by their suffix, sorted; hidden ones (.DS_Store's kin, ._name.png
    of macOS) left out. A link to nothing is listed: decoding it names it."""
    return sorted(
        f
        for f in folder.iterdir()
        if not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir()
    )


def too_large() -> BadImage:
    return BadImage(f"more than {Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's limit against decompression bombs")


def pixels(data: bytes | Path) -> np.ndarray:
    """The image (file or bytes) as stored: (C, H, W) uint8, C = 1 (gray), 2 (gray + alpha), 3 or 4 (RGBA).
    BadImage where it does not decode: an unknown format, a damaged file, more pixels than Pillow's
    limit, a file that cannot be opened (a link to nothing, no permission)."""
    limit = Image.MAX_IMAGE_PIXELS  # None: no limit (a user's choice)
    # Pillow's documented way to refuse at its warning: the filter, set for the whole process (and set
    # again on each call, as pytest resets filters), since catch_warnings is not safe in the threads
    # that decode. The size is checked below as well, for a filter someone else replaced meanwhile.
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as opened:
            if limit is not None and opened.width * opened.height > limit:
                raise too_large()
            image = opened.convert(CONVERT[opened.mode]) if opened.mode in CONVERT else opened
            stored = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1)  # (H, W, bands)
    except UnidentifiedImageError:  # its message repeats the path
        raise UnknownFormat("not a format Pillow knows") from None
    except TOO_LARGE:
        raise too_large() from None
    except BadImage:
        raise
    except (OSError, ValueError) as e:  # a known format, damaged; or no file to open
        raise BadImage(str(e) or type(e).__name__) from None
    return np.ascontiguousarray(stored.transpose(2, 0, 1))


def decode(data: bytes | Path, name: str) -> np.ndarray:
    """pixels(data), its errors one line: `name` says which input it was."""
    try:
        return pixels(data)
    except UnknownFormat:
        raise UserError(f"{name} is not an image file Pillow knows; {FORMATS}") from None
    except BadImage as e:
        raise UserError(f"{name} is not a readable image ({e}); {FORMATS}") from None


def conform(image: np.ndarray, channels: int, size: tuple[int, int]) -> np.ndarray:
    """`image` (C, H, W) uint8 with `channels` (1 or 3) channels and (H, W) = `size`."""
    image = image[:3] if image.shape[0] == 4 else image[:1] if image.shape[0] == 2 else image  # drop alpha
    if channels == 1 and image.shape[0] == 3:
        f = np.float32
        weighted = sum(image[i].astype(f) * f(w) for i, w in enumerate(GRAY_WEIGHTS))
        image = np.asarray(weighted).astype(np.uint8)[None]
    elif channels == 3 and image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    if tuple(image.shape[1:]) != size:
        height, width = size
        image = np.stack(
            [np.asarray(Image.fromarray(c).resize((width, height), Image.Resampling.BILINEAR)) for c in image]
        )
    return np.ascontiguousarray(image)


def in_training_range(x: np.ndarray, pixel_max: float | None) -> np.ndarray:
    """(N, C, H, W) uint8 pixels from files (0..255) in the training data's range (e.g. digits' 0..16)."""
    if pixel_max is None or pixel_max == 255.0:
        return x
    return x.astype(np.float32) * np.float32(pixel_max / 255.0)

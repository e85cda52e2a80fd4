"""Image files on disk: the class-folder layout, and each file decoded with torchvision's own decoders
and converted to one number of channels and one size. What data=image_folder, data=image_csv and
predict.py share, whether the images are then held in memory or streamed from the files."""

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from litlab.compat import decode_image_file
from litlab.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")  # torchvision.io's formats, and BMP by Pillow
SPLIT_FOLDERS = ("train", "val", "test")
MAX_DEFAULT_SIZE = 64  # the default image_size: the most common size, at most this
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow's modes of gray files (with alpha: LA)


def image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def class_folders(root: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, for every sub-folder of `root`, in sorted order."""
    classes = {d.name: image_files(d) for d in sorted(root.iterdir()) if d.is_dir()}
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise UserError(
            f"data.path={str(root)!r}: the class folder(s) {empty} hold no image files ({', '.join(IMAGE_SUFFIXES)}); "
            "add images or remove the folder"
        )
    return classes


def find_layout(root: Path) -> dict[str, dict[str, list[Path]]]:
    """Split name ('all', or train/val/test) -> class name -> files."""
    if not root.is_dir():
        raise UserError(f"data.path={str(root)!r} is not a folder; give a folder with one sub-folder per class")
    if (root / "train").is_dir():
        layout = {s: class_folders(root / s) for s in SPLIT_FOLDERS if (root / s).is_dir()}
        if "test" not in layout:
            raise UserError(f"data.path={str(root)!r} has train/ but no test/ folder; add test/ (val/ is optional)")
        return layout
    layout = {"all": class_folders(root)}
    if len(layout["all"]) < 2:
        raise UserError(
            f"data.path={str(root)!r} holds {len(layout['all'])} class folder(s); give one sub-folder per class, "
            "at least 2 (DIR/cat/*.jpg, DIR/dog/*.jpg)"
        )
    return layout


def decode(path: Path, key: str = "data.path") -> torch.Tensor:
    """The image at `path` as stored: (C, H, W) uint8, C = 1 (gray), 2 (gray + alpha), 3 or 4 (RGBA).
    torchvision's decoders; BMP, which they do not read, through Pillow. `key`: the setting, for errors."""
    try:
        if path.suffix.lower() == ".bmp":
            with Image.open(path) as opened:
                rgb = opened.mode not in ("L", "1", "I;16")
                return torch.as_tensor(np.asarray(opened.convert("RGB" if rgb else "L"))).reshape(
                    opened.height, opened.width, -1
                ).permute(2, 0, 1).contiguous()
        return decode_image_file(str(path))
    except (RuntimeError, ValueError, OSError) as e:
        raise UserError(f"{key}: {path} is not a readable image ({e}); remove or replace it") from None


def conform(image: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """`image` (C, H, W) uint8 with `channels` (1 or 3) channels and (H, W) = `size`."""
    image = image[:3] if image.shape[0] == 4 else image[:1] if image.shape[0] == 2 else image  # drop alpha
    if channels == 1 and image.shape[0] == 3:
        image = TF.rgb_to_grayscale(image)
    elif channels == 3 and image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if tuple(image.shape[1:]) != size:
        image = TF.resize(image, list(size), antialias=True)
    return image.contiguous()


def prepared_or_error(path: Path, channels: int, size: tuple[int, int]) -> torch.Tensor | str:
    """The file decoded and conformed, (C, H, W) uint8, or why it failed (for one message about every bad file)."""
    try:
        return conform(decode(path), channels, size)
    except UserError as e:
        return str(e)


def header(path: Path) -> tuple[int, tuple[int, int]] | None:
    """(channels as data.channels counts them: 1 or 3, (H, W)) from the file's header, without decoding;
    None where Pillow cannot read it (decoding then names the file)."""
    try:
        with Image.open(path) as opened:
            return (1 if opened.mode in GRAY_MODES else 3), (opened.height, opened.width)
    except (OSError, ValueError):
        return None


def probe(files: list[Path], channels: int | None, size: int | None, threads: int) -> tuple[int, tuple[int, int]]:
    """`channels` and `size` given, or what most files have (the size capped at MAX_DEFAULT_SIZE),
    read from the files' headers in `threads` threads."""
    if channels is not None and size is not None:
        return channels, (size, size)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = [h for h in pool.map(header, files) if h is not None] or [(3, (MAX_DEFAULT_SIZE, MAX_DEFAULT_SIZE))]
    if channels is None:
        channels = Counter(c for c, _ in found).most_common(1)[0][0]
    if size is None:
        h, w = Counter(hw for _, hw in found).most_common(1)[0][0]
        size = min(max(h, w), MAX_DEFAULT_SIZE)
        log.info("images resized to %dx%d, the most common size (capped at %d); data.image_size=N sets it",
                 size, size, MAX_DEFAULT_SIZE)  # fmt: skip
    return channels, (size, size)


def pixel_stats(image: torch.Tensor) -> np.ndarray:
    """Per channel of `image` (C, H, W): mean, sum of squared deviations, min and max, (C, 4) float64;
    the streamed path's scaler pools them over the train split (scaling.Moments.pooled)."""
    x = image.double().flatten(1)  # (C, H*W)
    mean = x.mean(1)
    return torch.stack([mean, ((x - mean[:, None]) ** 2).sum(1), x.amin(1), x.amax(1)], 1).numpy()

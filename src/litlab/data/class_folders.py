"""Image files on disk: the class-folder layout, and each file decoded and converted to one number
of channels and one size by litlab.readers.images (Pillow), the code predict.py and serve.py run, so
a model is trained on the pixels it is later served. What data=image_folder and data=image_csv
share, whether the images are then held in memory or streamed from the files."""

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image

from litlab.errors import UserError
from litlab.readers import images
from litlab.readers.images import IMAGE_SUFFIXES, images_in

log = logging.getLogger(__name__)

SPLIT_FOLDERS = ("train", "val", "test")
MAX_DEFAULT_SIZE = 64  # the default image_size: the most common size, at most this
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow's modes of gray files (with alpha: LA)
# Part of the decode cache's key: pixels cached by another decoder (torchvision's, before) or
# another Pillow (its resampling has changed between versions) are decoded again.
DECODER = f"Pillow {PIL.__version__}"


def class_folders(root: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, for every sub-folder of `root`, in sorted order; hidden folders
    (.ipynb_checkpoints, .git) are no classes."""
    classes = {d.name: images_in(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
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
    """The image at `path` as stored: (C, H, W) uint8, C = 1 (gray), 2 (gray + alpha), 3 or 4 (RGBA),
    by runtime.images.pixels. `key`: the setting, for errors, which ask to remove or replace the file."""
    try:
        return tensor(images.pixels(path))
    except images.BadImage as e:
        raise UserError(f"{key}: {path} is not a readable image ({e}); remove or replace it") from None


def conform(image: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """`image` (C, H, W) uint8 with `channels` (1 or 3) channels and (H, W) = `size`, by runtime.images.conform."""
    return tensor(images.conform(image.numpy(), channels, size))


def tensor(pixels: np.ndarray) -> torch.Tensor:
    """`pixels` as a tensor sharing their memory; copied where Pillow's buffer is read-only (torch warns)."""
    return torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())


def prepared_or_error(path: Path, channels: int, size: tuple[int, int]) -> torch.Tensor | str:
    """The file decoded and conformed, (C, H, W) uint8, or why it failed (for one message about every bad file)."""
    try:
        return tensor(images.conform(images.pixels(path), channels, size))
    except images.BadImage as e:
        return str(e)


def header(path: Path) -> tuple[int, tuple[int, int]] | None:
    """(channels as data.channels counts them: 1 or 3, (H, W)) from the file's header, without decoding;
    None where Pillow cannot read it (decoding then names the file)."""
    try:
        with Image.open(path) as opened:
            return (1 if opened.mode in GRAY_MODES else 3), (opened.height, opened.width)
    except (OSError, ValueError, *images.TOO_LARGE):
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

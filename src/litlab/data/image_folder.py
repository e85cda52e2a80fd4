"""Your own pictures: `DIR/<class>/*.png|jpg|...`, one folder per class (class names sorted, as
torchvision's ImageFolder sorts them), or `DIR/train`, `DIR/val`, `DIR/test` each holding class
folders, which then are the split. Decoded with torchvision's own decoders, converted to one
number of channels and one size, and held in memory as uint8 like the built-in image sets."""

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF
from typing_extensions import Unpack, override

from litlab.compat import decode_image_file
from litlab.data import decode_cache, fingerprint
from litlab.data.arrays import Arrays
from litlab.data.augment import BatchAugment
from litlab.data.base import DataArgs, InMemoryDataModule
from litlab.data.spec import InputKind
from litlab.errors import UserError
from litlab.task import Task

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")  # torchvision.io's formats, and BMP by Pillow
SPLIT_FOLDERS = ("train", "val", "test")
MAX_DEFAULT_SIZE = 64  # the default image_size: the most common size, at most this
OFFICIAL_TEST_SPLIT = (0.9, 0.1, 0.0)  # with DIR/test but no DIR/val: val is 10% of DIR/train
BAD_FILES = ("error", "skip")  # what a file that does not decode does: stop the run, or is left out


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


def decoded_or_error(path: Path) -> torch.Tensor | str:
    """decode(path), or why it failed (for one message about every bad file)."""
    try:
        return decode(path)
    except UserError as e:
        return str(e)


def most_common(images: list[torch.Tensor], channels: int | None, size: int | None) -> tuple[int, tuple[int, int]]:
    """`channels` and `size` given, or what most images have (the size capped at MAX_DEFAULT_SIZE)."""
    if channels is None:
        channels = Counter(1 if im.shape[0] <= 2 else 3 for im in images).most_common(1)[0][0]
    if size is None:
        h, w = Counter(tuple(im.shape[1:]) for im in images).most_common(1)[0][0]
        side = min(max(h, w), MAX_DEFAULT_SIZE)
        log.info("images resized to %dx%d, the most common size (capped at %d); data.image_size=N sets it",
                 side, side, MAX_DEFAULT_SIZE)  # fmt: skip
        return channels, (side, side)
    return channels, (size, size)


class ImageFolderArgs(DataArgs, total=False):
    """What data=image_csv takes of ImageFolderDataModule's settings, besides the path."""

    channels: int | None
    image_size: int | None
    crop_padding: int
    hflip: bool
    translate: float
    rotate: float
    bad_files: str
    cache_dir: str | None


class ImageFolderDataModule(InMemoryDataModule):
    """Pictures in class folders (see the module docstring). `channels`: 1 or 3 (default: what most
    files have); `image_size`: the side of the square every image is resized to (default: the most
    common size, at most 64). Augmentation of train batches as for the built-in image sets."""

    location_key = "data.path"

    def __init__(
        self,
        path: str,
        channels: int | None = None,
        image_size: int | None = None,
        crop_padding: int = 0,
        hflip: bool = False,
        translate: float = 0.0,
        rotate: float = 0.0,
        bad_files: str = "error",
        cache_dir: str | None = None,
        **shared: Unpack[DataArgs],
    ) -> None:
        if (Path(path).expanduser() / "test").is_dir():  # a given test set, as the built-in image sets have
            self.official_test, self.default_split = True, OFFICIAL_TEST_SPLIT
        super().__init__(**shared)
        if bad_files not in BAD_FILES:
            raise UserError(f"data.bad_files={bad_files!r} is invalid; valid: {', '.join(BAD_FILES)}")
        self.bad_files, self.cache_dir = bad_files, cache_dir
        if channels not in (None, 1, 3):
            raise UserError(f"data.channels={channels} is invalid: use 1 (gray), 3 (RGB) or null (as most files)")
        if image_size is not None and not (isinstance(image_size, int) and image_size >= 4):
            raise UserError(f"data.image_size={image_size!r} is invalid: give a side in pixels >= 4, e.g. 32, or null")
        self.path, self.channels, self.image_size = Path(path).expanduser().absolute(), channels, image_size
        self.augment = BatchAugment(crop_padding=crop_padding, hflip=hflip, translate=translate, rotate=rotate)
        self._layout: dict[str, dict[str, list[Path]]] | None = None

    def _decode_all(self, names: list[str], order: list[str]) -> dict[str, np.ndarray]:
        """Every file decoded (in parallel threads), converted and resized: x (N, C, H, W) uint8, y (N,),
        and the files they came from, relative to `path`, in split order. Files that do not decode are
        one error listing them (data.bad_files=error), or are left out with a warning (skip)."""
        files = [(f, names.index(c)) for s in order for c, fs in self.layout[s].items() for f in fs]
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            results = list(pool.map(decoded_or_error, [f for f, _ in files]))
        bad = {f: r for (f, _), r in zip(files, results, strict=True) if isinstance(r, str)}
        if bad:
            self._report_bad(bad)
        kept = [(f, label, r) for (f, label), r in zip(files, results, strict=True) if not isinstance(r, str)]
        channels, size = most_common([r for _, _, r in kept], self.channels, self.image_size)
        return {
            "x": torch.stack([conform(r, channels, size) for _, _, r in kept]).numpy(),
            "y": np.array([label for _, label, _ in kept], dtype=np.int64),
            "files": np.array([str(f.relative_to(self.root)) for f, _, _ in kept]),
        }

    def _report_bad(self, bad: dict[Path, str]) -> None:
        shown = "; ".join(str(f) for f in list(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        if self.bad_files == "error":
            raise UserError(
                f"data.path: {len(bad)} file(s) are not readable images ({shown}); remove or replace them, or "
                f"leave them out with data.bad_files=skip. The first: {next(iter(bad.values()))}"
            )
        log.warning("left out %d file(s) that are not readable images: %s", len(bad), shown)

    def _keep(self, files: np.ndarray) -> None:
        """The layout restricted to `files` (relative paths): those left out are not trained on or fingerprinted."""
        kept = {self.root / str(f) for f in files}
        layout = self.layout.items()
        self._layout = {split: {c: [f for f in fs if f in kept] for c, fs in cs.items()} for split, cs in layout}

    @property
    def root(self) -> Path:
        """The folder the image files' paths are relative to."""
        return self.path

    @property
    def layout(self) -> dict[str, dict[str, list[Path]]]:
        """Split ('all', or train/val/test) -> class name -> image files."""
        if self._layout is None:
            self._layout = find_layout(self.path)
        return self._layout

    def source_rows(self, files: list[Path]) -> np.ndarray | None:
        """Where each of `files` stands in the data's own listing; None: in the layout's order."""
        return None

    @override
    def source_files(self) -> list[Path]:
        return [f for classes in self.layout.values() for files in classes.values() for f in files]

    @override
    def load(self) -> Arrays:
        names = sorted({name for classes in self.layout.values() for name in classes})
        order = [s for s in ("all", *SPLIT_FOLDERS) if s in self.layout]  # train, val, test last: fixed splits
        every_file = fingerprint.of_files(self.source_files(), self.location_key)
        settings = {"channels": self.channels, "image_size": self.image_size, "bad_files": self.bad_files}
        cache = decode_cache.cache_file(self.cache_dir, every_file, settings) if self.cache_dir else None
        decoded = decode_cache.read(cache) if cache is not None else None
        if decoded is None:
            decoded = self._decode_all(names, order)
            if cache is not None:
                decode_cache.write(cache, decoded)
        else:
            log.info("decoded images read from the cache %s (data.cache_dir)", cache)
        self._keep(decoded["files"])
        if len(decoded["files"]) == len(every_file["files"]):
            self._fingerprint = every_file  # nothing left out: no second pass over the files
        x, y, layout = decoded["x"], decoded["y"], self.layout
        sizes = {s: sum(len(fs) for fs in layout[s].values()) for s in order}
        if "all" not in layout:
            how = "data.split is not used" if "val" in sizes else "val is data.split's share of train/"
            log.info("data.path holds %s: those folders are the split (%s)", ", ".join(sizes), how)
        task = Task.BINARY if len(names) == 2 else Task.MULTICLASS
        rows = self.source_rows([self.root / str(f) for f in decoded["files"]])
        return Arrays(
            x, y, task, InputKind.IMAGE, names, num_val=sizes.get("val", 0), num_test=sizes.get("test", 0),
            source_rows=rows,
        )  # fmt: skip


"""Your own pictures: `DIR/<class>/<image files>`, one folder per class (class names sorted, as
torchvision's ImageFolder sorts them), or `DIR/train`, `DIR/val`, `DIR/test` each holding class
folders, which then are the split. Decoded with Pillow by the code predict.py and serve.py run
(litlab.readers.images), converted to one number of channels and one size, then held in memory
as uint8 like the built-in image sets when they fit under data.memory_budget_gb, or else streamed
from the files by DataLoader workers."""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from typing_extensions import Unpack, override

from litlab.data import decode_cache, fingerprint
from litlab.data.arrays import Arrays
from litlab.data.augment import BatchAugment
from litlab.data.base import DataArgs, SplitDataModule
from litlab.data.batches import EpochBatches
from litlab.data.class_folders import DECODER, SPLIT_FOLDERS, find_layout, pixel_stats, prepared_or_error, probe
from litlab.data.image_settings import MAX_WORKERS, check_settings
from litlab.data.scaling import Moments
from litlab.data.split_copies import placement
from litlab.data.streamed import DecodedImages, FileBatches
from litlab.data_spec import InputKind, Task
from litlab.errors import UserError
from litlab.machine import cpu_cores, physical_memory_gb

log = logging.getLogger(__name__)

OFFICIAL_TEST_SPLIT = (0.9, 0.1, 0.0)  # with DIR/test but no DIR/val: val is 10% of DIR/train


class ImageFolderDataModule(SplitDataModule):
    """Pictures in class folders (see the module docstring). `channels`: 1 or 3 (default: what most
    files have); `image_size`: the side of the square every image is resized to (default: the most
    common size, at most 64). `in_memory`: auto (held in memory when the decoded uint8 pixels fit in
    `memory_budget_gb`, default a quarter of this machine's memory), true, or false (streamed from the
    files by `num_workers` DataLoader workers, default one per core, at most 8). Augmentation of train
    batches as for the built-in image sets, on either path."""

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
        in_memory: str | bool = "auto",
        memory_budget_gb: float | None = None,
        num_workers: int | None = None,
        **shared: Unpack[DataArgs],
    ) -> None:
        path = str(path)  # a number from the command line is a folder name too
        if (Path(path).expanduser() / "test").is_dir():  # a given test set, as the built-in image sets have
            self.official_test, self.default_split = True, OFFICIAL_TEST_SPLIT
        super().__init__(**shared)
        check_settings(channels, image_size, bad_files, in_memory, memory_budget_gb, num_workers)
        self.bad_files, self.cache_dir, self.in_memory = bad_files, cache_dir, in_memory
        self.memory_budget_gb = physical_memory_gb() / 4 if memory_budget_gb is None else memory_budget_gb
        self.num_workers = min(cpu_cores(), MAX_WORKERS) if num_workers is None else num_workers
        self.path, self.channels, self.image_size = Path(path).expanduser().absolute(), channels, image_size
        self.augment = BatchAugment(crop_padding=crop_padding, hflip=hflip, translate=translate, rotate=rotate)
        self._layout: dict[str, dict[str, list[Path]]] | None = None
        self._files: list[Path] = []  # the streamed path's files, in the rows' order
        self._stats: np.ndarray | None = None  # ... and each one's pixel_stats, (N, C, 4)

    # --- loading ------------------------------------------------------------------------
    @override
    def load(self) -> Arrays:
        names = sorted({name for classes in self.layout.values() for name in classes})
        order = [s for s in ("all", *SPLIT_FOLDERS) if s in self.layout]  # train, val, test last: fixed splits
        files = [(f, names.index(c)) for s in order for c, fs in self.layout[s].items() for f in fs]
        channels, size = probe([f for f, _ in files], self.channels, self.image_size, cpu_cores())
        held = self._held(len(files), channels, size)
        # A link to nothing (or a loop) has no size or hash: it is a bad file, found when decoding.
        readable = [f for f, _ in files if f.is_file() and os.access(f, os.R_OK)]
        every_file = fingerprint.of_files(readable, self.location_key)
        decoded = self._decoded(files, every_file, channels, size, held)
        self._keep(decoded["files"])
        if len(decoded["files"]) == len(every_file["files"]):
            self._fingerprint = every_file  # nothing left out: no second pass over the files
        sizes = {s: sum(len(fs) for fs in self.layout[s].values()) for s in order}
        emptied = [f"{s}/" for s, n in sizes.items() if not n]
        if emptied:
            raise UserError(f"data.path: every image in {', '.join(emptied)} was left out as unreadable; "
                            "replace them with readable images")  # fmt: skip
        if "all" not in self.layout:
            how = "data.split is not used" if "val" in sizes else "val is data.split's share of train/"
            log.info("data.path holds %s: those folders are the split (%s)", ", ".join(sizes), how)
        kept = [self.root / str(f) for f in decoded["files"]]
        if not held:
            self._files, self._stats = kept, decoded["stats"]
        return Arrays(
            decoded["x"] if held else None, decoded["y"], Task.BINARY if len(names) == 2 else Task.MULTICLASS,
            InputKind.IMAGE, names, num_val=sizes.get("val", 0), num_test=sizes.get("test", 0),
            source_rows=self.source_rows(kept), streamed_shape=None if held else (channels, *size),
        )  # fmt: skip

    def _held(self, n: int, channels: int, size: tuple[int, int]) -> bool:
        """Whether the decoded images are held in memory (data.in_memory), and the log line that says so."""
        need_gb = n * channels * size[0] * size[1] / 2**30  # uint8
        held = need_gb <= self.memory_budget_gb if self.in_memory == "auto" else bool(self.in_memory)
        how = "data.in_memory=auto" if self.in_memory == "auto" else f"data.in_memory={str(self.in_memory).lower()}"
        where = "held in memory" if held else f"streamed from the files by {self.num_workers} DataLoader worker(s)"
        log.info("%d images of %dx%dx%d: %.1f MB decoded, budget %.1f GB (data.memory_budget_gb): %s (%s)",
                 n, channels, *size, need_gb * 1024, self.memory_budget_gb, where, how)  # fmt: skip
        return held

    def _decoded(self, files: list[tuple[Path, int]], every_file: dict, channels: int, size: tuple[int, int],
                 held: bool) -> dict[str, np.ndarray]:  # fmt: skip
        """_decode_all's result, from the cache where an earlier run left it; the files it left out
        refused or reported (_left_out) before a cache is written."""
        settings = {"channels": channels, "size": list(size), "bad_files": self.bad_files, "held": held,
                    "decoder": DECODER}  # fmt: skip
        cache = decode_cache.cache_file(self.cache_dir, every_file, settings) if self.cache_dir else None
        decoded = decode_cache.read(cache) if cache is not None else None
        if decoded is not None:
            log.info("decoded images read from the cache %s (data.cache_dir)", cache)
            self._left_out(files, decoded["files"], {})
            return decoded
        decoded, reasons = self._decode_all(files, channels, size, held)
        self._left_out(files, decoded["files"], reasons)
        if cache is not None:
            decode_cache.write(cache, decoded)
        return decoded

    def _decode_all(self, files: list[tuple[Path, int]], channels: int, size: tuple[int, int],
                    held: bool) -> tuple[dict[str, np.ndarray], dict[Path, str]]:  # fmt: skip
        """Every file decoded (in parallel threads), converted and resized; y (N,) and the files they
        came from (relative to `root` where they are in it), in split order; and x (N, C, H, W) uint8 when
        `held`, else each image's pixel_stats (N, C, 4), the pixels let go. With them, why each file
        that does not decode failed."""

        def prepare(path: Path) -> torch.Tensor | np.ndarray | str:
            image = prepared_or_error(path, channels, size)
            return image if held or isinstance(image, str) else pixel_stats(image)

        with ThreadPoolExecutor(max_workers=cpu_cores()) as pool:
            results = list(pool.map(prepare, [f for f, _ in files]))
        bad = {f: r for (f, _), r in zip(files, results, strict=True) if isinstance(r, str)}
        kept = [(f, label, r) for (f, label), r in zip(files, results, strict=True) if not isinstance(r, str)]
        empty = np.zeros((0, channels, *size) if held else (0, channels, 4), dtype=np.uint8 if held else np.float64)
        decoded = {
            "x" if held else "stats": torch.stack([torch.as_tensor(r) for _, _, r in kept]).numpy() if kept else empty,
            "y": np.array([label for _, label, _ in kept], dtype=np.int64),
            "files": np.array([self._relative(f) for f, _, _ in kept], dtype=str),
        }
        return decoded, bad

    def _left_out(self, files: list[tuple[Path, int]], kept: np.ndarray, reasons: dict[Path, str]) -> None:
        """The files that were not decoded (`reasons`: why, where known) as one error (data.bad_files=error,
        or none left), or a warning that counts them (skip); none: nothing to say."""
        found = set(kept.tolist())
        left = [f for f, _ in files if self._relative(f) not in found]
        if not left:
            return
        shown = "; ".join(self.describe(f) for f in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        first = f"The first, {self.describe(left[0])}: {reasons.get(left[0]) or self._why(left[0])}"
        if len(left) == len(files):
            raise UserError(f"data.path: none of the {len(files)} image file(s) is a readable image ({shown}). {first}")
        if self.bad_files == "error":
            raise UserError(
                f"data.path: {len(left)} file(s) are not readable images ({shown}); remove or replace them, or "
                f"leave them out with data.bad_files=skip. {first}"
            )
        log.warning("left out %d file(s) that are not readable images (data.bad_files=skip): %s", len(left), shown)

    @staticmethod
    def _why(path: Path) -> str:
        """Why `path` does not decode, for a file that the decode cache left out (a link to nothing)."""
        reason = prepared_or_error(path, 1, (4, 4))
        return reason if isinstance(reason, str) else "not decoded"

    def _relative(self, path: Path) -> str:
        """`path` as the decoded files name it: relative to `root`, or as it is where it lies outside it."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def describe(self, path: Path) -> str:
        """`path`, for a message about one of the data's files."""
        return str(path)

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

    # --- the streamed path --------------------------------------------------------------
    @property
    def streamed(self) -> bool:
        """Whether the images stay in their files (data.in_memory), decided by load()."""
        return self.arrays.x is None

    @override
    def train_moments(self) -> Moments:
        if not self.streamed:
            return super().train_moments()
        assert self._stats is not None  # load() kept them with the files
        _, h, w = self.arrays.input_shape
        return Moments.pooled(h * w, torch.as_tensor(self._stats[self._rows["train"]]))

    @override
    def contents(self, name: str) -> np.ndarray:
        """Held in memory: the decoded pixels. Streamed: each file's sha256 (from the fingerprint)."""
        if not self.streamed:
            return super().contents(name)
        self.setup()
        digests = {Path(f["path"]): f["sha256"] for f in self.fingerprint["files"]}
        return np.array([digests[self._files[i]] for i in self._rows[name]], dtype="S64")[:, None]  # (N, 1)

    @override
    def _batches(self, name: str, shuffle: bool) -> EpochBatches:
        if not self.streamed:
            return super()._batches(name, shuffle)
        _, compute = placement(self.device, self.trainer)
        rows = self._rows[name]
        channels, h, w = self.arrays.input_shape
        files = DecodedImages([self._files[i] for i in rows], self.split_labels(name), channels, (h, w))
        size = len(files) if self.batch_size == "full" else int(self.batch_size)
        return FileBatches(files, size, shuffle, self._transform(name), compute, self.num_workers, **self._order())

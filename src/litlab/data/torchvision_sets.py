"""MNIST, Fashion-MNIST and CIFAR-10 from their torchvision file formats, decoded once to uint8.

The files are looked for in `data_dir` (torchvision's layout, or the raw files directly),
then in a copy installed on the system, then downloaded with torchvision. Each file is
checked against its own header before training, so a truncated file fails at start.
"""

import gzip
import pickle
import struct
from abc import abstractmethod
from pathlib import Path

import numpy as np
from torchvision import datasets
from typing_extensions import Unpack, override

from litlab.data.arrays import Arrays
from litlab.data.augment import BatchAugment
from litlab.data.base import DataArgs, SplitDataModule
from litlab.data.locate import DataFilesError, locate, undone_if_failed
from litlab.data_spec import InputKind, Task
from litlab.errors import UserError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _read_bytes(path: Path) -> bytes:
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:  # gzip raises EOFError on a truncated file
        raise DataFilesError(
            f"{path} cannot be read ({e}): it is truncated or corrupt; delete it and supply it again"
        ) from e


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes (the MNIST format), plain or gzipped, checked against its header."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataFilesError(f"{path} is not an idx file of unsigned bytes (header {raw[:4].hex()!r})")
    ndim = raw[3]
    offset = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:offset]) if len(raw) >= offset else ()
    expected = offset + int(np.prod(dims))
    if len(dims) != ndim or len(raw) != expected:
        raise DataFilesError(
            f"{path} is truncated or corrupt: its header promises shape {dims} ({expected} bytes) but it has "
            f"{len(raw)} bytes; delete it and supply it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays, nothing else: a crafted "batch"
    cannot run code (the pattern of the pickle module's docs, "Restricting Globals")."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    @override
    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> images (N, 3, 32, 32) uint8 and labels (N,)."""
    try:
        with open(path, "rb") as f:
            d = ArraysOnlyUnpickler(f, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as e:  # noqa: BLE001 - unpickling a damaged file can raise almost anything
        raise DataFilesError(
            f"{path} is not a readable CIFAR-10 batch ({type(e).__name__}: {e}); supply it again"
        ) from e
    if len(x) != len(y):
        raise DataFilesError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def _checked_labels(y: np.ndarray, num_classes: int, where: Path) -> np.ndarray:
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataFilesError(f"{where}: labels outside 0..{num_classes - 1}; the file is corrupt")
    return y.astype(np.int64)


class TorchvisionSetArgs(DataArgs, total=False):
    """What the image sets with files take besides their own settings (TorchvisionSetDataModule's)."""

    data_dir: str
    download: bool


class TorchvisionSetDataModule(SplitDataModule):
    """An image set with a fixed test set, read from files that `prepare_data` finds: in
    `data_dir` (see `search_dirs`), else with a torchvision download (`download=true`)."""

    official_test = True
    default_split = (0.9, 0.1, 0.0)  # fractions of the official train set; its test set is fixed
    file_names: tuple[str, ...]
    how_to_supply: str  # the end of the not-found error; may use {data_dir}

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = True,
        **shared: Unpack[DataArgs],
    ) -> None:
        super().__init__(**shared)
        if not isinstance(data_dir, str) or not data_dir:
            raise UserError(f"data.data_dir={data_dir!r} is invalid: give the folder that holds the files")
        if not isinstance(download, bool):
            raise UserError(f"data.download={download!r} is invalid: use true (download when not found) or false")
        self.data_dir, self.download = Path(data_dir).expanduser().absolute(), download
        self._files: dict[str, Path] | None = None

    @abstractmethod
    def search_dirs(self) -> list[Path]:
        """Where to look, in order, before downloading."""

    @abstractmethod
    def download_files(self) -> Path:
        """Download with torchvision into data_dir; return the folder that holds the files."""

    def download_or_undo(self) -> Path:
        """download_files, leaving nothing behind in data_dir if it fails."""
        with undone_if_failed(self.data_dir):
            return self.download_files()

    @override
    def prepare_data(self) -> None:
        """Find the files: data_dir, then a system copy, then a torchvision download."""
        if self._files is None:
            self._files = locate(
                type(self).__name__,
                self.file_names,
                self.search_dirs(),
                self.download_or_undo if self.download else None,
                self.how_to_supply.format(data_dir=self.data_dir),
            )

    location_key = "data.data_dir"

    @override
    def source_files(self) -> list[Path]:
        return list(self.files.values())

    @property
    def files(self) -> dict[str, Path]:
        """Each of `file_names` -> the file found for it (plain or .gz)."""
        self.prepare_data()
        assert self._files is not None  # prepare_data() found them, or raised
        return self._files


class MNISTDataModule(TorchvisionSetDataModule):
    """MNIST: 60,000 train and 10,000 test handwritten digits, 1x28x28, 10 classes.

    `data_dir` may hold torchvision's layout (`MNIST/raw/...`) or the four idx files
    (plain or .gz). Train/val are split from the official train set; the test set is the
    official one. Augmentation (train batches only): `crop_padding` pixels of random crop,
    random shifts up to `translate` of the size and rotations up to `rotate` degrees.
    """

    file_names = MNIST_FILES
    how_to_supply = "Put the four files (plain or .gz) in {data_dir}, or point data.data_dir at them."
    folder = "MNIST"  # torchvision's folder name
    system_dirs: tuple[str, ...] = ()
    torchvision_class = datasets.MNIST
    labels = [str(i) for i in range(10)]  # the class names of the files' ids 0..9

    def __init__(
        self,
        crop_padding: int = 0,
        translate: float = 0.0,
        rotate: float = 0.0,
        **shared: Unpack[TorchvisionSetArgs],
    ) -> None:
        super().__init__(**shared)
        self.augment = BatchAugment(crop_padding=crop_padding, translate=translate, rotate=rotate)

    @override
    def search_dirs(self) -> list[Path]:
        return [self.data_dir / self.folder / "raw", self.data_dir, *map(Path, self.system_dirs)]

    @override
    def download_files(self) -> Path:
        for train in (True, False):
            self.torchvision_class(str(self.data_dir), train=train, download=True)
        return self.data_dir / self.folder / "raw"

    @override
    def load(self) -> Arrays:
        files = self.files
        parts = []
        for images, labels in ((MNIST_FILES[0], MNIST_FILES[1]), (MNIST_FILES[2], MNIST_FILES[3])):
            x, y = read_idx(files[images]), read_idx(files[labels])
            if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
                raise DataFilesError(
                    f"{files[images]} / {files[labels]}: expected N 28x28 images and N labels, "
                    f"got images {x.shape} and labels {y.shape}"
                )
            parts.append((x[:, None], _checked_labels(y, 10, files[labels])))  # (N, 1, 28, 28)
        (x_train, y_train), (x_test, y_test) = parts
        x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
        return Arrays(x, y, Task.MULTICLASS, InputKind.IMAGE, list(self.labels), num_test=len(x_test))


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: Zalando's 28x28 clothing images in MNIST's format, 10 classes.
    Debian's `dataset-fashion-mnist` package installs them in /usr/share/datasets/fashion-mnist."""

    folder = "FashionMNIST"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    torchvision_class = datasets.FashionMNIST
    labels = list(datasets.FashionMNIST.classes)


class CIFAR10DataModule(TorchvisionSetDataModule):
    """CIFAR-10: 50,000 train and 10,000 test colour images, 3x32x32, 10 classes.

    `data_dir` may hold torchvision's `cifar-10-batches-py/` or its batch files directly.
    Augmentation (train batches only): random crop with `crop_padding`, horizontal flip.
    """

    file_names = CIFAR10_FILES
    how_to_supply = "Unpack cifar-10-python.tar.gz into {data_dir}, or point data.data_dir at the batches."
    folder = "cifar-10-batches-py"

    def __init__(
        self,
        crop_padding: int = 4,
        hflip: bool = True,
        **shared: Unpack[TorchvisionSetArgs],
    ) -> None:
        super().__init__(**shared)
        self.augment = BatchAugment(crop_padding=crop_padding, hflip=hflip)

    @override
    def search_dirs(self) -> list[Path]:
        return [self.data_dir / self.folder, self.data_dir]

    @override
    def download_files(self) -> Path:
        datasets.CIFAR10(str(self.data_dir), train=True, download=True)
        return self.data_dir / self.folder

    @override
    def load(self) -> Arrays:
        files = self.files
        batches = [read_cifar_batch(files[name]) for name in CIFAR10_FILES]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([_checked_labels(b[1], 10, files[n]) for b, n in zip(batches, CIFAR10_FILES, strict=True)])
        return Arrays(x, y, Task.MULTICLASS, InputKind.IMAGE, CIFAR10_CLASSES, num_test=len(batches[-1][0]))

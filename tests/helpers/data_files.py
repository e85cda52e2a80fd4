"""Data files written in their real formats: CSVs, and tiny learnable MNIST (idx), Fashion-MNIST
and CIFAR-10 (python pickles) in torchvision's layout; a decompression bomb's PNG header; and where
real MNIST is, for the tests that need it."""

import gzip
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.config import ROOT

# Real MNIST for the tests that use it (skipped without it): $LITLAB_DATA_DIR, else ../shared/data.
REAL_DATA_DIR = Path(os.environ.get("LITLAB_DATA_DIR", ROOT.parent / "shared" / "data"))
needs_real_mnist = pytest.mark.skipif(
    not (REAL_DATA_DIR / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found in {REAL_DATA_DIR}/MNIST/raw"
)


def write_csv(folder: Path, df, name: str = "t.csv") -> str:
    """`df` as folder/name, without the index; returns the path."""
    path = folder / name
    df.to_csv(path, index=False)
    return str(path)


def idx_bytes(a: np.ndarray) -> bytes:
    """The idx format of unsigned bytes: magic 0x00000800 + ndim, big-endian dims, data."""
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def tiny_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images whose class (0..9) is written into their brightness, so they are learnable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, (n, *shape)) + (y * 20).reshape(-1, *[1] * len(shape))
    return x.astype(np.uint8), y.astype(np.uint8)


def write_mnist(folder: Path, n_train: int = 100, n_test: int = 20, gz: bool = True) -> Path:
    """Tiny MNIST-format files (train-images-idx3-ubyte[.gz]...) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = tiny_images(n, (28, 28), seed)
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            path = folder / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(idx_bytes(a)) if gz else idx_bytes(a))
    return folder


def write_cifar10(folder: Path, per_batch: int = 20) -> Path:
    """Tiny CIFAR-10 python batches (data_batch_1..5, test_batch) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        x, y = tiny_images(per_batch, (3, 32, 32), i)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(per_batch, -1), b"labels": y.tolist()}, f)
    return folder


def write_image_sets(data_dir: Path) -> Path:
    """Tiny MNIST, Fashion-MNIST and CIFAR-10 in torchvision's layout under `data_dir`."""
    write_mnist(data_dir / "MNIST" / "raw")
    write_mnist(data_dir / "FashionMNIST" / "raw", gz=False)
    write_cifar10(data_dir / "cifar-10-batches-py")
    return data_dir


def write_image_folder(root: Path, layout: str = "classes", per_class: int | None = None) -> Path:
    """scikit-learn's digits as 8x8 gray PNG files in class folders `root/<digit name>/NNNN.png`
    (layout 'classes'), or under root/train, root/val and root/test (layout 'splits': 60/20/20 of
    each class). `per_class`: at most that many images of each digit."""
    from sklearn import datasets
    from torchvision.io import write_png

    digits = datasets.load_digits()
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)  # 0..16 -> 0..255
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    seen: dict[int, int] = {}
    for i, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        k = seen[label] = seen.get(label, 0) + 1
        if per_class is not None and k > per_class:
            continue
        split = "" if layout == "classes" else ("train" if k % 5 < 3 else "val" if k % 5 == 3 else "test")
        folder = root / split / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        write_png(torch.as_tensor(image)[None], str(folder / f"{i:04d}.png"))
    return root


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header promises width x height gray pixels, in a few dozen bytes: what a decompression
    bomb shows a decoder before it decodes (Pillow checks the size as it opens the file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )

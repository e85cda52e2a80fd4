"""Tiny trained models and their ONNX bundles for the deploy tests (predict.py, export.py, serve.py),
made once per test process and shared read-only by the modules that import this: a breast_cancer
logistic regression (a table, 1 epoch) and a digits MLP (8x8 images, 2 epochs); new inputs for each;
and the broken files those tests hand to the entry points (bundles edited, a decompression bomb)."""

import functools
import json
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import datasets

from tests.helpers.config import compose_cfg

DONE = "made"  # written last: a folder without it is from a process that did not finish


@dataclass(frozen=True)
class TinyModels:
    folder: Path
    cancer_ckpt: Path
    cancer_bundle: Path
    digits_ckpt: Path
    digits_bundle: Path
    rows: Path  # 5 breast_cancer rows, all columns (a CSV)
    pictures: Path  # 4 digits as 8-bit PNG files


def tiny_models(factory: pytest.TempPathFactory) -> TinyModels:
    """The models of this test process: trained and exported by the first module that asks (~5 s)."""
    from litlab.inference.export import export  # here: importing this helper imports no torch
    from litlab.run.train import train

    folder = factory.getbasetemp() / "tiny_models"
    models = TinyModels(
        folder, folder / "cancer.ckpt", folder / "cancer_bundle", folder / "digits.ckpt", folder / "digits_bundle",
        folder / "rows.csv", folder / "pictures",
    )  # fmt: skip
    if (folder / DONE).exists():
        return models
    shutil.rmtree(folder, ignore_errors=True)
    for name, overrides in (
        ("cancer", ["experiment=breast_cancer_logistic", "trainer.max_epochs=1"]),
        ("digits", ["trainer.max_epochs=2"]),  # 2 epochs: no two classes near a tie (parity compares the argmax)
    ):
        best = train(compose_cfg(folder / f"{name}_run", *overrides, "~callbacks.test_figures"))["best_ckpt"]
        shutil.copy(best, folder / f"{name}.ckpt")
        export(str(folder / f"{name}.ckpt"), "onnx", folder / f"{name}_bundle")
    datasets.load_breast_cancer(as_frame=True).data.head(5).to_csv(models.rows, index=False)
    models.pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[:4]):
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(models.pictures / f"{i}.png")
    (folder / DONE).touch()
    return models


def edited_bundle(bundle: Path, to: Path, field: str, value: object) -> Path:
    """A copy of `bundle` at `to` whose bundle.json has `value` at the dotted `field`, as a hand edit leaves it."""
    shutil.copytree(bundle, to)
    state = json.loads((to / "bundle.json").read_text())
    *parents, key = field.split(".")
    place = state
    for parent in parents:
        place = place[parent]
    place[key] = value
    (to / "bundle.json").write_text(json.dumps(state))
    return to


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def bomb_png(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: ~50 KB that decode to side² bytes (400 MB at 20000)."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit per pixel, gray
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")

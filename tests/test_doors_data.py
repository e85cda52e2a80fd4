"""The hostile-input table of train.py's data: your own CSV (data=csv), the built-in image sets read
from their files (data=mnist, fashion_mnist, cifar10 with data.download=false) and the settings every
dataset shares. Each broken one is one `Error:` line naming it, exit 2, before training, and the
input files are left as they were. The picture doors (image_folder, image_csv) are in
test_doors_data_pictures.py, which runs its rows as these are run here."""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from litlab.data.torchvision_sets import FashionMNISTDataModule
from tests.helpers.config import SHRINK
from tests.helpers.data_files import idx_bytes, write_cifar10, write_mnist
from tests.helpers.doors import Form, Refusal, assert_refused, snapshot

CSV, TRAIN = "train.py data=csv", "train.py"
MNIST, FASHION, CIFAR = "train.py data=mnist", "train.py data=fashion_mnist", "train.py data=cifar10"
C = ("data=csv", "data.target=y")
SPLIT = "a stratified split needs at least one row of each class in each of train, val and test"


def mnist(*args: str) -> tuple[str, ...]:
    return ("model=cnn", "data=mnist", "data.download=false", *args)


def cifar(*args: str) -> tuple[str, ...]:
    return ("model=cnn", "data=cifar10", "data.download=false", *args)


REFUSALS: list[Refusal] = [
    # data=csv: the file named
    Refusal(CSV, "data.path", Form.MISSING, "data.path='{tmp}/nope.csv': no such file",
            (*C, "data.path={tmp}/nope.csv")),
    Refusal(CSV, "data.path", Form.EMPTY, "could not be read as CSV: No columns to parse", (*C, "data.path={empty}")),
    Refusal(CSV, "data.path", Form.WRONG_TYPE, "data.path='{tmp}': is a folder", (*C, "data.path={tmp}")),
    Refusal(CSV, "data.path", Form.LINK, "data.path='{dangling}': no such file", (*C, "data.path={dangling}")),
    Refusal(CSV, "data.path", Form.LOCKED, "Permission denied", (*C, "data.path={locked}")),
    Refusal(CSV, "data.path", Form.HUGE, "is not valid utf-8", (*C, "data.path={binary}")),
    # data=csv: what the file holds
    Refusal(CSV, "CSV file", Form.EMPTY, "has a header but no data rows", (*C, "data.path={header}")),
    Refusal(CSV, "CSV file", Form.CORRUPT, "could not be read as CSV: Error tokenizing data",
            (*C, "data.path={ragged}")),
    Refusal(CSV, "CSV file", Form.TRUNCATED, "data.target='y' is empty on 1 line(s)", (*C, "data.path={cut}")),
    Refusal(CSV, "CSV file", Form.NON_FINITE, "NaN or inf in column(s) ['a']", (*C, "data.path={inf_feature}")),
    Refusal(CSV, "CSV file", Form.NON_FINITE, "the regression target contains NaN or inf",
            (*C, "data.path={inf_target}")),
    Refusal(CSV, "CSV file", Form.DUPLICATE, "names the column(s) ['y'] more than once", (*C, "data.path={twice}")),
    Refusal(CSV, "CSV file", Form.EMPTY, "column(s) ['c'] are empty in every row; leave them out with "
            "data.drop_columns=[c]", (*C, "data.path={blank_column}")),
    Refusal(CSV, "CSV file", Form.TOO_FEW, "the target has 1 class(es) ['a']", (*C, "data.path={one_class}")),
    Refusal(CSV, "CSV file", Form.TOO_FEW, f"class 'rare' has only 2 row(s), too few for data.split=[0.7, 0.15, "
            f"0.15], which puts none of them in val and test: {SPLIT}", (*C, "data.path={rare2}")),
    Refusal(CSV, "CSV file", Form.TOO_FEW, "class 'rare' has only 3 row(s), too few", (*C, "data.path={rare3}")),
    Refusal(CSV, "data.num_folds", Form.TOO_FEW, "data.num_folds=5 is too many: class 'rare' has only 4 train+val "
            "row(s) of its 5", (*C, "data.path={rare5}", "data.num_folds=5")),
    Refusal(CSV, "data.split", Form.TOO_FEW, "class 'rare' has only 6 row(s), too few for data.split=[0.9, 0.05, 0.05]",
            (*C, "data.path={rare6}", "data.split=[0.9,0.05,0.05]")),
    # data=csv: its settings
    Refusal(CSV, "data.target", Form.EMPTY, "data.target='y' is empty on 1 line(s)", (*C, "data.path={cut}")),
    Refusal(CSV, "data.target", Form.WRONG_TYPE, "data.target='y' is not numeric",
            (*C, "data.path={one_class}", "data.target_type=regression")),
    Refusal(CSV, "data.features", Form.WRONG_TYPE, "data.features='a' is invalid: give a list of column names",
            (*C, "data.path={good}", "data.features=a")),
    Refusal(CSV, "data.features", Form.MISSING, "data.features: no column(s) ['zz']",
            (*C, "data.path={good}", "data.features=[zz]")),
    Refusal(CSV, "data.delimiter", Form.WRONG_SHAPE, "data.delimiter='ab' is invalid",
            (*C, "data.path={good}", "data.delimiter=ab")),
    Refusal(CSV, "data.encoding", Form.OUT_OF_RANGE, "data.encoding='klingon' is not an encoding",
            (*C, "data.path={good}", "data.encoding=klingon")),
    Refusal(CSV, "data.target_type", Form.OUT_OF_RANGE, "data.target_type='ordinal' is invalid",
            (*C, "data.path={good}", "data.target_type=ordinal")),
    Refusal(CSV, "data.missing_target", Form.OUT_OF_RANGE, "data.missing_target='fill' is invalid",
            (*C, "data.path={good}", "data.missing_target=fill")),
    # data=mnist, fashion_mnist, cifar10: their files in data.data_dir, no download
    Refusal(MNIST, "data.data_dir", Form.MISSING, "Tried, in order: {tmp}/nowhere/MNIST/raw: no such dir",
            mnist("data.data_dir={tmp}/nowhere")),
    Refusal(MNIST, "data.data_dir", Form.WRONG_TYPE, "{good}: not a folder", mnist("data.data_dir={good}")),
    Refusal(MNIST, "data.download", Form.WRONG_TYPE, "data.download='maybe' is invalid",
            mnist("data.data_dir={mnist_ok}", "data.download=maybe")),
    Refusal(MNIST, "train-images-idx3-ubyte.gz", Form.TRUNCATED, "is truncated or corrupt",
            mnist("data.data_dir={mnist_cut}")),
    Refusal(MNIST, "train-images-idx3-ubyte.gz", Form.CORRUPT, "Not a gzipped file",
            mnist("data.data_dir={mnist_junk}")),
    Refusal(MNIST, "train-images-idx3-ubyte.gz", Form.WRONG_TYPE, "is not an idx file of unsigned bytes (header "
            "'00000903')", mnist("data.data_dir={mnist_magic}")),
    Refusal(MNIST, "train-images-idx3-ubyte.gz", Form.WRONG_SHAPE, "expected N 28x28 images and N labels, got images "
            "(100, 27, 28)", mnist("data.data_dir={mnist_shape}")),
    Refusal(MNIST, "train-images-idx3-ubyte.gz", Form.EMPTY, "is not an idx file of unsigned bytes (header '')",
            mnist("data.data_dir={mnist_empty}")),
    Refusal(MNIST, "train-labels-idx1-ubyte.gz", Form.OUT_OF_RANGE, "labels outside 0..9",
            mnist("data.data_dir={mnist_labels}")),
    Refusal(MNIST, "train-labels-idx1-ubyte.gz", Form.WRONG_SHAPE, "and labels (90,)",
            mnist("data.data_dir={mnist_count}")),
    Refusal(FASHION, "data.data_dir", Form.MISSING, "FashionMNISTDataModule: could not find the files",
            ("model=cnn", "data=fashion_mnist", "data.download=false", "data.data_dir={tmp}/nowhere")),
    Refusal(CIFAR, "data.data_dir", Form.MISSING, "CIFAR10DataModule: could not find the files",
            cifar("data.data_dir={tmp}/nowhere")),
    Refusal(CIFAR, "data_batch_3", Form.TRUNCATED, "data_batch_3 is not a readable CIFAR-10 batch",
            cifar("data.data_dir={cifar_cut}")),
    Refusal(CIFAR, "test_batch", Form.WRONG_SHAPE, "cannot reshape array of size 500",
            cifar("data.data_dir={cifar_shape}")),
    Refusal(CIFAR, "data_batch_1", Form.CORRUPT, "refused to load posix.system", cifar("data.data_dir={cifar_code}")),
    # the settings every dataset shares (data=digits, the default)
    Refusal(TRAIN, "data.split", Form.WRONG_TYPE, "data.split='abc' is invalid", ("data.split=abc",)),
    Refusal(TRAIN, "data.split", Form.NON_FINITE, "data.split=[nan, 0.5, 0.5] is invalid",
            ("data.split=[nan,0.5,0.5]",)),
    Refusal(TRAIN, "data.split", Form.WRONG_SHAPE, "data.split=[0.5, 0.5] is invalid", ("data.split=[0.5,0.5]",)),
    Refusal(TRAIN, "data.num_folds", Form.WRONG_TYPE, "data.num_folds='abc', data.fold=0 is invalid",
            ("data.num_folds=abc",)),
    Refusal(TRAIN, "data.num_folds", Form.OUT_OF_RANGE, "data.num_folds=1000 is too many", ("data.num_folds=1000",)),
    Refusal(TRAIN, "data.fold", Form.WRONG_TYPE, "data.fold=1.5 is invalid", ("data.num_folds=5", "data.fold=1.5")),
    Refusal(TRAIN, "data.fold", Form.OUT_OF_RANGE, "data.fold=5 is invalid", ("data.num_folds=5", "data.fold=5")),
    Refusal(TRAIN, "data.seed", Form.WRONG_TYPE, "data.seed='abc' is invalid", ("data.seed=abc",)),
    Refusal(TRAIN, "data.seed", Form.OUT_OF_RANGE, "data.seed=-1 is invalid: give an integer in 0..4294967295",
            ("data.seed=-1",)),
    Refusal(TRAIN, "data.batch_size", Form.WRONG_TYPE, "data.batch_size=True is invalid", ("data.batch_size=true",)),
]  # fmt: skip

NEEDS_A_USER = {Form.LOCKED}  # chmod 000 denies nothing to root
FASHION_SYSTEM_DIRS = FashionMNISTDataModule.system_dirs  # searched after data.data_dir


def first_of_each_door(rows: list[Refusal], skipped: tuple[str, ...] = ()) -> list:
    """Every row as a test: the first of each door in the fast suite (about 0.4 s each, the time of
    train.py's composition) unless the door is `skipped` there, the others in the slow suite."""
    seen: set[str] = set(skipped)
    params = []
    for row in rows:
        marks = [] if row.door not in seen else [pytest.mark.slow]
        seen.add(row.door)
        params.append(pytest.param(row, id=row.id, marks=marks))
    return params


def run_refused(cli, row: Refusal, names: dict[str, str], inputs: Path, run: Path) -> None:
    """The row's train.py, refused as promised: one line, exit 2, the inputs as they were, nothing
    trained, and decoded images cached only whole."""
    if row.form in NEEDS_A_USER and os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not deny reading")
    if row.door == FASHION and row.form is Form.MISSING and any(map(os.path.isdir, FASHION_SYSTEM_DIRS)):
        pytest.skip("Debian's dataset-fashion-mnist is installed: data=fashion_mnist falls back to it, as it should")
    before = snapshot(inputs)
    where = [f"hydra.run.dir={run / 'run'}", f"paths.data_dir={run / 'data'}"]
    code, out, err = cli("train.py", *[a.format(**names) for a in row.args], *SHRINK, *where)
    assert_refused(code, out, err, row.says.format(**names))
    assert snapshot(inputs) == before, "an input file was changed, or a new one left beside them"
    assert not list(run.rglob("*.ckpt")), "trained"
    for cache in (p for p in run.rglob("cache/**/*") if p.is_file()):  # decoded before the refusal, kept whole
        assert cache.suffix == ".npz" and np.load(cache)["y"].size, cache


def table(rows: int, y: list | None = None, **columns: list) -> str:
    """A CSV's text: columns a and b of numbers, then `columns`, then target y (alternating classes)."""
    data = {"a": [float(i) for i in range(rows)], "b": [float(i % 7) for i in range(rows)], **columns}
    data["y"] = y if y is not None else ["yes" if i % 2 else "no" for i in range(rows)]
    lines = [",".join(data)] + [",".join(str(data[c][i]) for c in data) for i in range(rows)]
    return "\n".join(lines) + "\n"


def write_csvs(tmp: Path) -> dict[str, str]:
    texts = {
        "good": table(40),
        "empty": "",
        "header": "a,b,y\n",
        "ragged": "a,b,y\n1,2,x\n3,4,y,5,6\n",
        "cut": table(40)[:-4],  # the last row cut in its target
        "inf_feature": table(40).replace("\n5.0,", "\ninf,"),
        "inf_target": table(40, y=[i * 0.5 for i in range(39)] + ["inf"]),
        "twice": "a,y,b,y\n" + "".join(f"{i},{i % 2},{i % 3},{i % 2}\n" for i in range(40)),
        "blank_column": table(40, c=[""] * 40),
        "one_class": table(40, y=["a"] * 40),
        "rare2": table(62, y=["rare"] * 2 + ["yes", "no"] * 30),
        "rare3": table(62, y=["rare"] * 3 + ["yes", "no"] * 29 + ["yes"]),
        "rare5": table(62, y=["rare"] * 5 + ["yes", "no"] * 28 + ["yes"]),
        "rare6": table(62, y=["rare"] * 6 + ["yes", "no"] * 28),
    }
    names = {}
    for name, text in texts.items():
        (tmp / f"{name}.csv").write_text(text)
        names[name] = str(tmp / f"{name}.csv")
    (tmp / "binary.csv").write_bytes(np.random.default_rng(0).integers(0, 256, 2_000_000, dtype=np.uint8).tobytes())
    (tmp / "dangling.csv").symlink_to(tmp / "gone.csv")
    (tmp / "locked.csv").write_text(texts["good"])
    (tmp / "locked.csv").chmod(0)
    return names | {n: str(tmp / f"{n}.csv") for n in ("binary", "dangling", "locked")}


def broken_mnist(tmp: Path, name: str, file: str, content: bytes) -> str:
    """Tiny MNIST in tmp/name with one file's bytes replaced by `content`."""
    raw = write_mnist(tmp / name / "MNIST" / "raw")
    (raw / file).write_bytes(content)
    return str(tmp / name)


def write_image_sets(tmp: Path) -> dict[str, str]:
    images, labels = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
    whole = (write_mnist(tmp / "whole") / images).read_bytes()
    names = {
        "mnist_ok": str(write_mnist(tmp / "mnist_ok" / "MNIST" / "raw").parents[1]),
        "mnist_cut": broken_mnist(tmp, "mnist_cut", images, whole[:-500]),
        "mnist_junk": broken_mnist(tmp, "mnist_junk", images, b"garbage, not gzip" * 10),
        "mnist_magic": broken_mnist(tmp, "mnist_magic", images, gzip.compress(b"\x00\x00\x09\x03" + bytes(20))),
        "mnist_shape": broken_mnist(tmp, "mnist_shape", images, gzip.compress(idx_bytes(np.zeros((100, 27, 28))))),
        "mnist_empty": broken_mnist(tmp, "mnist_empty", images, gzip.compress(b"")),
        "mnist_labels": broken_mnist(tmp, "mnist_labels", labels, gzip.compress(idx_bytes(np.full(100, 12)))),
        "mnist_count": broken_mnist(tmp, "mnist_count", labels, gzip.compress(idx_bytes(np.ones(90)))),
    }
    short = {b"data": np.zeros((5, 100), np.uint8), b"labels": [0] * 5}  # 100 values an image, not 3x32x32
    for name, batch, content in (
        ("cifar_cut", "data_batch_3", lambda b: b[: len(b) // 2]),
        ("cifar_shape", "test_batch", lambda _: pickle.dumps(short)),
        ("cifar_code", "data_batch_1", lambda _: pickle.dumps(os.system)),  # unpickled, it would be a callable
    ):  # fmt: skip
        folder = write_cifar10(tmp / name / "cifar-10-batches-py", per_batch=4)
        (folder / batch).write_bytes(content((folder / batch).read_bytes()))
        names[name] = str(tmp / name)
    return names


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("doors_data")
    return {"tmp": str(tmp), **write_csvs(tmp), **write_image_sets(tmp)}, tmp


# fashion_mnist and cifar10 find their files as mnist does: their rows run in the slow suite only
@pytest.mark.parametrize("row", first_of_each_door(REFUSALS, skipped=(FASHION, CIFAR)))
def test_a_hostile_data_input_is_refused_in_one_line(inputs, cli, tmp_path, row):
    names, tmp = inputs
    run_refused(cli, row, names, tmp, tmp_path)

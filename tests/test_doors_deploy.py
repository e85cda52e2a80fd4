"""The hostile-input table of predict.py (a checkpoint or a bundle), export.py and serve.py's command
line: every broken argument and file a user can give them is one `Error:` line naming it, exit 2,
and nothing an earlier run wrote is touched. The HTTP requests are tests/test_doors_serve.py's."""

import contextlib
import json
import shutil
import signal
import socket
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.crafted import MakesADir
from tests.helpers.deploy_models import bomb_png, edited_bundle, tiny_models
from tests.helpers.doors import Form, Refusal, as_params, assert_refused, snapshot
from tests.helpers.processes import free_port

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

BUNDLE, CKPT, EXPORT, SERVE = "predict.py bundle=", "predict.py ckpt_path=", "export.py", "serve.py"
IN_TABLE = ("bundle={cancer}", "output={new}/predictions.csv")  # the breast_cancer bundle, a new output file
IN_IMAGES = ("bundle={digits}", "output={new}/predictions.csv")
WITH_CSV = ("input={rows}", "output={new}/predictions.csv")


def edit(bundle: str, path: str, value: object) -> tuple[str, str, object]:
    """A copy of `bundle` ("cancer" or "digits") with bundle.json's dotted `path` set to `value`."""
    return bundle, path, value


# {name} fields: files made by the `files` fixture below. EDITS: the bundles hand-edited for some rows.
EDITS = {
    "shape_str": edit("cancer", "data.input_shape", "30"),
    "shape_wide": edit("cancer", "data.input_shape", [31]),
    "shape_image": edit("digits", "data.input_shape", [1, 8, 9]),
    "classes_str": edit("cancer", "data.class_names", "malignant,benign"),
    "classes_3": edit("digits", "data.class_names", ["0", "1", "2"]),
    "classes_dup": edit("cancer", "data.class_names", ["benign", "benign"]),
    "shift_short": edit("cancer", "scaler.shift", [0.0] * 29),
    "scale_nan": edit("cancer", "scaler.scale", [float("nan")] * 30),
    "scale_zero": edit("digits", "scaler.scale", [[[0.0]]]),
    "task": edit("cancer", "data.task", "ranking"),
    "version": edit("cancer", "bundle_version", 3),
    "escapes": edit("cancer", "file", "../digits_bundle/model.onnx"),
    "no_columns": edit("cancer", "data.columns", None),
}

REFUSALS: list[Refusal] = [
    # predict.py bundle=DIR: the folder
    Refusal(BUNDLE, "bundle", Form.MISSING, "does not exist", ("bundle={tmp}/nope", *WITH_CSV)),
    Refusal(BUNDLE, "bundle", Form.EMPTY, "holds no bundle.json", ("bundle={empty_dir}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle", Form.WRONG_TYPE, "is a file, not a folder", ("bundle={rows}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle", Form.LINK, "does not exist", ("bundle={dangling}", *WITH_CSV)),
    Refusal(BUNDLE, "extras.print_config", Form.WRONG_TYPE, "extras.print_config='maybe' is invalid",
            ("bundle={cancer}", *WITH_CSV, "extras.print_config=maybe")),
    # bundle.json
    Refusal(BUNDLE, "bundle.json", Form.MISSING, "holds no bundle.json", ("bundle={no_json}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.EMPTY, "bundle.json is not JSON", ("bundle={json_empty}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.TRUNCATED, "bundle.json is not JSON", ("bundle={json_half}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.CORRUPT, "bundle.json is not JSON", ("bundle={json_binary}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_TYPE, "data.input_shape is '30'",
            ("bundle={shape_str}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_TYPE, "data.class_names is 'malignant,benign'",
            ("bundle={classes_str}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_TYPE, "data.columns is null",
            ("bundle={no_columns}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_SHAPE, "data.columns.features has 30 names, but "
            "data.input_shape is [31]", ("bundle={shape_wide}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_SHAPE, "data.input_shape is [1, 8, 9], but the network "
            "takes tensor(float) of shape ['N', 1, 8, 8]",
            ("bundle={shape_image}", "input={pictures}", "output={new}/predictions.csv")),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_SHAPE, "class_names has 3 names, but the network gives outputs "
            "of shape ['N', 10]", ("bundle={classes_3}", "input={pictures}", "output={new}/predictions.csv")),
    Refusal(BUNDLE, "bundle.json", Form.DUPLICATE, "data.class_names is ['benign', 'benign']",
            ("bundle={classes_dup}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.WRONG_SHAPE, "scaler.shift has shape (29,), but the input "
            "shape [30] needs (30,)", ("bundle={shift_short}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.NON_FINITE, "scaler.scale is [nan",
            ("bundle={scale_nan}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.OUT_OF_RANGE, "scaler.scale holds 0",
            ("bundle={scale_zero}", "input={pictures}", "output={new}/predictions.csv")),
    Refusal(BUNDLE, "bundle.json", Form.OUT_OF_RANGE, "data.task is 'ranking'", ("bundle={task}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.OUT_OF_RANGE, "bundle_version 3", ("bundle={version}", *WITH_CSV)),
    Refusal(BUNDLE, "bundle.json", Form.ESCAPES, "file is '../digits_bundle/model.onnx'",
            ("bundle={escapes}", *WITH_CSV)),
    # model.onnx
    Refusal(BUNDLE, "model.onnx", Form.MISSING, "the network file model.onnx is missing",
            ("bundle={onnx_missing}", *WITH_CSV)),
    Refusal(BUNDLE, "model.onnx", Form.EMPTY, "model.onnx is not an ONNX model", ("bundle={onnx_empty}", *WITH_CSV)),
    Refusal(BUNDLE, "model.onnx", Form.TRUNCATED, "model.onnx is not an ONNX model",
            ("bundle={onnx_half}", *WITH_CSV)),
    Refusal(BUNDLE, "model.onnx", Form.CORRUPT, "model.onnx is not an ONNX model", ("bundle={onnx_text}", *WITH_CSV)),
    Refusal(BUNDLE, "model.onnx", Form.LINK, "model.onnx is not an ONNX model", ("bundle={onnx_link}", *WITH_CSV)),
    Refusal(BUNDLE, "model.onnx", Form.WRONG_SHAPE, "data.input_shape is [30], but the network takes "
            "tensor(float) of shape ['N', 1, 8, 8]", ("bundle={onnx_other}", *WITH_CSV)),
    # input= (read by the same code for a bundle and a checkpoint)
    Refusal(BUNDLE, "input", Form.MISSING, "(no such file or dir)", (*IN_TABLE, "input={tmp}/nope")),
    Refusal(BUNDLE, "input", Form.EMPTY, "could not be read as CSV", (*IN_TABLE, "input={csv_empty}")),
    Refusal(BUNDLE, "input", Form.TOO_FEW, "holds no inputs (0 rows)", (*IN_TABLE, "input={csv_header}")),
    Refusal(BUNDLE, "input", Form.WRONG_SHAPE, "lacks the column(s) ['mean radius']", (*IN_TABLE, "input={csv_short}")),
    Refusal(BUNDLE, "input", Form.WRONG_TYPE, "column(s) ['mean texture'] must be numeric",
            (*IN_TABLE, "input={csv_text}")),
    Refusal(BUNDLE, "input", Form.NON_FINITE, "not finite (inf or NaN) in ['mean area']",
            (*IN_TABLE, "input={csv_inf}")),
    Refusal(BUNDLE, "input", Form.WRONG_TYPE, "is a folder of images, but this model takes 30 features",
            (*IN_TABLE, "input={pictures}")),
    Refusal(BUNDLE, "input", Form.EMPTY, "holds no image files", (*IN_IMAGES, "input={empty_dir}")),
    Refusal(BUNDLE, "input", Form.CORRUPT, "bad.png is not", (*IN_IMAGES, "input={pictures_bad}")),
    Refusal(BUNDLE, "input", Form.HUGE, "bomb.png is not a readable image", (*IN_IMAGES, "input={pictures_bomb}")),
    Refusal(BUNDLE, "input", Form.WRONG_SHAPE, "has shape (3, 1, 8, 7); this model expects (N, 1, 8, 8)",
            (*IN_IMAGES, "input={npy_shape}")),
    Refusal(BUNDLE, "input", Form.WRONG_TYPE, "holds <U1 values", (*IN_IMAGES, "input={npy_text}")),
    Refusal(BUNDLE, "input", Form.CORRUPT, "is not a plain numeric .npy array", (*IN_IMAGES, "input={npy_pickle}")),
    Refusal(BUNDLE, "input", Form.TRUNCATED, "is not a plain numeric .npy array", (*IN_IMAGES, "input={npy_half}")),
    Refusal(BUNDLE, "input", Form.NON_FINITE, "not finite (inf or NaN), in 1 input(s), the first at row 2",
            (*IN_IMAGES, "input={npy_nan}")),
    # output=
    Refusal(BUNDLE, "output", Form.WRONG_TYPE, "is a folder; give the path of a new CSV file",
            ("bundle={cancer}", "input={rows}", "output={earlier}")),
    Refusal(BUNDLE, "output", Form.DUPLICATE, "exists; predict.py does not overwrite files",
            ("bundle={cancer}", "input={rows}", "output={earlier}/predictions.csv")),
    Refusal(BUNDLE, "output", Form.LINK, "exists; predict.py does not overwrite files",
            ("bundle={cancer}", "input={rows}", "output={out_link}")),
    Refusal(BUNDLE, "output", Form.WRONG_TYPE, "is a file, not a folder",
            ("bundle={cancer}", "input={rows}", "output={rows}/predictions.csv")),
    # predict.py ckpt_path=: the checkpoint door's own forms (test_user_errors.py has a missing and a
    # crafted one), then its input and output, read by the same code as a bundle's
    Refusal(CKPT, "ckpt_path", Form.EMPTY, "ckpt_path", ("ckpt_path={empty_dir}", *WITH_CSV)),
    Refusal(CKPT, "ckpt_path", Form.TRUNCATED, "ckpt_path", ("ckpt_path={ckpt_half}", *WITH_CSV)),
    Refusal(CKPT, "ckpt_path", Form.WRONG_TYPE, "ckpt_path", ("ckpt_path={cancer}/model.onnx", *WITH_CSV)),
    Refusal(CKPT, "ckpt_path", Form.DUPLICATE, "give exactly one of ckpt_path=RUN",
            ("ckpt_path={cancer_ckpt}", "bundle={cancer}", *WITH_CSV)),
    Refusal(CKPT, "input", Form.NON_FINITE, "not finite (inf or NaN) in ['mean area']",
            ("ckpt_path={cancer_ckpt}", "input={csv_inf}", "output={new}/predictions.csv")),
    Refusal(CKPT, "input", Form.HUGE, "bomb.png is not a readable image",
            ("ckpt_path={digits_ckpt}", "input={pictures_bomb}", "output={new}/predictions.csv")),
    Refusal(CKPT, "output", Form.DUPLICATE, "exists; predict.py does not overwrite files",
            ("ckpt_path={cancer_ckpt}", "input={rows}", "output={earlier}/predictions.csv")),
    # export.py
    Refusal(EXPORT, "format", Form.OUT_OF_RANGE, "format='tflite' is not an export format",
            ("ckpt_path={cancer_ckpt}", "format=tflite", "out={new}/bundle")),
    Refusal(EXPORT, "out", Form.DUPLICATE, "does not overwrite a bundle", ("ckpt_path={cancer_ckpt}", "out={earlier}")),
    Refusal(EXPORT, "out", Form.WRONG_TYPE, "is a file, not a folder", ("ckpt_path={cancer_ckpt}", "out={rows}/b")),
    Refusal(EXPORT, "tolerance", Form.WRONG_TYPE, "tolerance='abc' is not a tolerance",
            ("ckpt_path={cancer_ckpt}", "tolerance=abc", "out={new}/bundle")),
    Refusal(EXPORT, "tolerance", Form.OUT_OF_RANGE, "tolerance=-1 is not a tolerance",
            ("ckpt_path={cancer_ckpt}", "tolerance=-1", "out={new}/bundle")),
    Refusal(EXPORT, "tolerance", Form.NON_FINITE, "tolerance=nan is not a tolerance",
            ("ckpt_path={cancer_ckpt}", "tolerance=nan", "out={new}/bundle")),
    Refusal(EXPORT, "ckpt_path", Form.MISSING, "ckpt_path", ("ckpt_path={tmp}/nope.ckpt", "out={new}/bundle")),
    Refusal(EXPORT, "ckpt_path", Form.TRUNCATED, "ckpt_path", ("ckpt_path={ckpt_half}", "out={new}/bundle")),
    # serve.py's command line: refused before any server starts
    Refusal(SERVE, "port", Form.WRONG_TYPE, "port='abc' is not a port", ("bundle={cancer}", "port=abc")),
    Refusal(SERVE, "port", Form.OUT_OF_RANGE, "port=70000 is not a port", ("bundle={cancer}", "port=70000")),
    Refusal(SERVE, "port", Form.OUT_OF_RANGE, "port=80 is not a port", ("bundle={cancer}", "port=80")),
    Refusal(SERVE, "port", Form.TWO_PROCESSES, "cannot be used on 127.0.0.1", ("bundle={cancer}", "port={busy}")),
    Refusal(SERVE, "max_request_mb", Form.WRONG_TYPE, "max_request_mb='abc' is not a size",
            ("bundle={cancer}", "port={free}", "max_request_mb=abc")),
    Refusal(SERVE, "max_request_mb", Form.OUT_OF_RANGE, "max_request_mb=0 is not a size",
            ("bundle={cancer}", "port={free}", "max_request_mb=0")),
    Refusal(SERVE, "max_request_mb", Form.NON_FINITE, "max_request_mb=inf is not a size",
            ("bundle={cancer}", "port={free}", "max_request_mb=inf")),
    Refusal(SERVE, "bundle", Form.MISSING, "does not exist", ("bundle={tmp}/nope", "port={free}")),
    Refusal(SERVE, "model.onnx", Form.TRUNCATED, "model.onnx is not an ONNX model",
            ("bundle={onnx_half}", "port={free}")),
    Refusal(SERVE, "bundle.json", Form.WRONG_SHAPE, "class_names has 3 names", ("bundle={classes_3}", "port={free}")),
    Refusal(SERVE, "ckpt_path", Form.TRUNCATED, "ckpt_path", ("ckpt_path={ckpt_half}", "port={free}")),
]  # fmt: skip


def half(path: Path, to: Path) -> str:
    to.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(to)


def bad_files(tmp: Path, models) -> dict[str, str]:
    """The broken inputs and outputs the rows name, beside an earlier run's predictions."""
    rows = models.rows.read_text().splitlines()
    made = {"empty_dir": tmp / "empty", "earlier": tmp / "earlier", "pictures_bad": tmp / "bad_pictures",
            "pictures_bomb": tmp / "bomb_pictures"}  # fmt: skip
    for folder in made.values():
        folder.mkdir()
    (made["earlier"] / "predictions.csv").write_text("row,pred_class\n0,1\n")
    (made["pictures_bad"] / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not the rest of a picture")
    (made["pictures_bomb"] / "bomb.png").write_bytes(bomb_png())
    (tmp / "out_link.csv").symlink_to(made["earlier"] / "predictions.csv")
    (tmp / "dangling").symlink_to(tmp / "gone")
    columns = rows[0].split(",")
    texts = {
        "csv_empty": "",
        "csv_header": rows[0] + "\n",
        "csv_short": ",".join(columns[1:]) + "\n" + "\n".join(r.split(",", 1)[1] for r in rows[1:]) + "\n",
        "csv_text": "\n".join([rows[0], *(",".join([r.split(",")[0], "soft", *r.split(",")[2:]]) for r in rows[1:])]),
        "csv_inf": "\n".join([rows[0], *(",".join([*r.split(",")[:3], "inf", *r.split(",")[4:]]) for r in rows[1:])]),
    }
    for name, text in texts.items():
        (tmp / f"{name}.csv").write_text(text)
        made[name] = tmp / f"{name}.csv"
    pixels = np.zeros((3, 1, 8, 8), np.float32)
    pixels[2, 0, 4, 4] = np.nan
    arrays = {"npy_shape": pixels[..., :7], "npy_text": np.array([["a"] * 64] * 2), "npy_nan": pixels}
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
        made[name] = tmp / f"{name}.npy"
    np.save(tmp / "npy_pickle.npy", np.array([MakesADir(str(tmp / "pickle_ran"))], dtype=object), allow_pickle=True)
    made["npy_pickle"] = tmp / "npy_pickle.npy"
    made["npy_half"] = Path(half(tmp / "npy_nan.npy", tmp / "npy_half.npy"))
    return {name: str(path) for name, path in made.items()}


def bad_bundles(tmp: Path, models) -> dict[str, str]:
    """Copies of the tiny bundles, each broken in one way."""
    bundles = {"cancer": models.cancer_bundle, "digits": models.digits_bundle}
    made: dict[str, Path] = {}
    for name, (which, field, value) in EDITS.items():
        made[name] = edited_bundle(bundles[which], tmp / name, field, value)
    for name in ("no_json", "json_empty", "json_half", "json_binary", "onnx_missing", "onnx_empty", "onnx_half",
                 "onnx_text", "onnx_link", "onnx_other"):  # fmt: skip
        made[name] = Path(shutil.copytree(models.cancer_bundle, tmp / name))
    (made["no_json"] / "bundle.json").unlink()
    (made["json_empty"] / "bundle.json").write_text("")
    half(models.cancer_bundle / "bundle.json", made["json_half"] / "bundle.json")
    (made["json_binary"] / "bundle.json").write_bytes(bytes(range(256)))
    (made["onnx_missing"] / "model.onnx").unlink()
    (made["onnx_empty"] / "model.onnx").write_bytes(b"")
    half(models.cancer_bundle / "model.onnx", made["onnx_half"] / "model.onnx")
    (made["onnx_text"] / "model.onnx").write_text("this is not a network\n")
    (made["onnx_link"] / "model.onnx").unlink()
    (made["onnx_link"] / "model.onnx").symlink_to(models.rows)
    shutil.copy(models.digits_bundle / "model.onnx", made["onnx_other"] / "model.onnx")
    return {name: str(path) for name, path in made.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every `{name}` a row names: the tiny models, the broken files, a port another server holds."""
    models = tiny_models(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("doors_deploy")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    names = {
        "tmp": str(tmp), "rows": str(models.rows), "pictures": str(models.pictures),
        "cancer": str(models.cancer_bundle), "digits": str(models.digits_bundle),
        "cancer_ckpt": str(models.cancer_ckpt), "digits_ckpt": str(models.digits_ckpt),
        "ckpt_half": half(models.cancer_ckpt, tmp / "half.ckpt"), "out_link": str(tmp / "out_link.csv"),
        "dangling": str(tmp / "dangling"), "busy": str(busy.getsockname()[1]), "free": str(free_port()),
        **bad_files(tmp, models), **bad_bundles(tmp, models),
    }  # fmt: skip
    yield names, tmp
    busy.close()


@contextlib.contextmanager
def alarm(seconds: int):
    """A server that a regression let start (serve.py runs in this process) is stopped after `seconds` as
    Ctrl-C stops it: LitServe shuts its processes down on KeyboardInterrupt (and on nothing else), and
    serve.py then exits 0, which fails the row."""

    def expire(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("row", as_params(REFUSALS, lambda row: (row.door, row.reads)))
def test_a_hostile_input_is_refused_in_one_line(files, cli, tmp_path, row):
    names, tmp = files
    new = tmp_path / "new"  # where a row's output or bundle would go: nothing may appear there
    new.mkdir()
    before = snapshot(tmp)
    args = [arg.format(**names, new=new) for arg in row.args]
    with alarm(60):
        code, out, err = cli(row.door.split()[0], *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert_refused(code, out, err, row.says)
    assert snapshot(tmp) == before, "an earlier file was changed"
    assert list(new.iterdir()) == [], "a refused run left a file or a partial folder"
    assert not (tmp / "pickle_ran").exists(), "the pickled .npy ran code"


def test_the_rows_name_real_files(files):
    """Guards the table: each broken file is what its row says (a bundle edit took, a bomb is a PNG)."""
    names, _ = files
    assert json.loads(Path(names["shape_wide"], "bundle.json").read_text())["data"]["input_shape"] == [31]
    assert Path(names["pictures_bomb"], "bomb.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="allow_pickle"):
        np.load(names["npy_pickle"])

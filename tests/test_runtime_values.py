"""The runtime's small rules, without a server or an exported run: serve.py's max_request_mb in bytes,
how a bundle.json message shows a value it refuses, which bundle.json contents are read and which are
refused with the field and its value named, the command line's bundle key, and the checks of a
network onnxruntime loads against bundle.json (on graphs built here with onnx's helpers)."""

import copy
import math
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from litlab.conf import DIR as CONF_DIR
from litlab.data_spec import Columns, DataSpec, InputKind, ScalerStats, Task
from litlab.errors import UserError
from litlab.runtime.bundle import Bundle, read_bundle
from litlab.runtime.bundle_json import Invalid, read_contract, short
from litlab.runtime.cli import names_bundle, one_model, without_callbacks
from litlab.runtime.inputs import read_csv, read_inputs, read_npy
from litlab.runtime.onnx_model import network_mismatch, session_of
from litlab.runtime.predict_files import check_new
from litlab.runtime.server import Settings, checked_limit
from tests.helpers.crafted import MakesADir

# A table of 3 inputs, one of them categorical ("c", one-hot as "c_k"), and an RGB image of 10 classes.
COLUMNS = Columns(inputs=("x", "y", "c"), categorical=("c",), features=("x", "y", "c_k"))
TABLE = DataSpec(Task.BINARY, InputKind.TABLE, (3,), ("no", "yes"), columns=COLUMNS, train_size=40,
                 class_counts=(5, 35))  # fmt: skip
IMAGE = DataSpec(Task.MULTICLASS, InputKind.IMAGE, (3, 8, 8), tuple("0123456789"), pixel_max=255.0)
SCALERS = {TABLE: ScalerStats("standard", np.array([1.0, 2.0, 0.0]), np.array([2.0, 4.0, 1.0])),
           IMAGE: ScalerStats("standard", np.full((3, 1, 1), 0.5), np.full((3, 1, 1), 0.25))}  # fmt: skip


def bundle_state(spec: DataSpec, **edits: Any) -> dict[str, Any]:
    """bundle.json's object (version 2) of `spec`, with dotted `edits` ("data__task": "x") applied."""
    state = {"format": "onnx", "file": "model.onnx", "data": spec.to_state(), "scaler": SCALERS[spec].to_state()}
    for path, value in edits.items():
        *parents, last = path.split("__")
        place = state
        for part in parents:
            place = place[part]
        place[last] = value
    return state


@pytest.mark.parametrize("spec", [TABLE, IMAGE], ids=["table", "image"])
def test_a_bundle_json_reads_back_into_the_spec_and_scaler_it_was_written_from(spec):
    read, scaler = read_contract(copy.deepcopy(bundle_state(spec)), 2)
    assert read == spec
    np.testing.assert_array_equal(scaler.shift, SCALERS[spec].shift)
    np.testing.assert_array_equal(scaler.scale, SCALERS[spec].scale)


@pytest.mark.parametrize(
    "spec, edits",
    [
        (TABLE, {"data__columns": {"inputs": ["c"], "categorical": ["c"], "features": ["c_a", "c_b", "c_k"]}}),
        (TABLE, {"scaler__method": "none", "scaler__shift": [0.0], "scaler__scale": [1.0]}),
        (IMAGE, {"data__input_shape": [1, 8, 8], "scaler__shift": [[[0.0]]], "scaler__scale": [[[1.0]]]}),
        (IMAGE, {"data__class_counts": []}),
        (TABLE, {"data__target_mean": 3, "data__target_std": 2}),
        (TABLE, {"data__class_counts": [0, 40]}),
    ],
    ids=["all-categorical", "no-scaling", "gray", "no-rows-counted", "integer-numbers", "a-class-of-no-rows"],
)
def test_other_valid_bundle_jsons_are_read(spec, edits):
    read_contract(bundle_state(spec, **edits), 2)


@pytest.mark.parametrize(
    "spec, edits, says",
    [
        (TABLE, {"data__task": "ranking"}, "data.task is 'ranking'; valid: one of"),
        (TABLE, {"file": "../model.onnx"}, "file is '../model.onnx'; valid: a file name"),
        (TABLE, {"file": ""}, "file is ''; valid: a file name"),
        (TABLE, {"file": ".."}, "file is '..'; valid: a file name"),
        (TABLE, {"data__input_shape": [1, 8, 8]}, "data.input_shape is [1, 8, 8], which a table input cannot have"),
        (TABLE, {"data__class_counts": ""}, "data.class_counts is ''; valid: null or a list of integers >= 0"),
        (TABLE, {"data__class_counts": [3, -1]}, "data.class_counts is [3, -1]"),
        (TABLE, {"data__class_names": ["a", "b", "c"]}, "data.class_names has 3 names, but a binary model has 2"),
        (TABLE, {"data__class_names": ["only"]}, "data.class_names is ['only']; valid: null or a list of 2 or more"),
        (TABLE, {"data__class_names": [0, 1]}, "data.class_names is [0, 1]; valid: null or a list of 2 or more"),
        (TABLE, {"data__task": "regression"}, "data.class_names is ['no', 'yes'], but a regression model has no"),
        (TABLE, {"data__class_names": None}, "data.class_names is null, but a binary model names its classes"),
        (TABLE, {"data__columns": None}, "data.columns is null, but a table model reads its inputs by column"),
        (TABLE, {"data__columns__features": "x"}, "data.columns.features is 'x'; valid: a list of strings"),
        (TABLE, {"data__columns__features": ["x", "y"]}, "data.columns.features has 2 names, but data.input_shape"),
        (TABLE, {"data__columns__categorical": ["z"]}, "data.columns' inputs, categorical and features do not"),
        (TABLE, {"data__columns__inputs": ["x", "w", "c"]}, "data.columns' inputs, categorical and features do not"),
        (TABLE, {"scaler__shift": [1.0, 2.0]}, "scaler.shift has shape (2,), but the input shape [3] needs (3,)"),
        (TABLE, {"scaler__shift": [0.0]}, "scaler.shift has shape (1,), but the input shape [3] needs (3,)"),
        (TABLE, {"scaler__scale": [1.0, 0.0, 1.0]}, "scaler.scale holds 0, which scaling would divide by"),
        (TABLE, {"scaler__scale": []}, "scaler.scale is []; valid: a list of finite numbers"),
        (TABLE, {"scaler__scale": [1.0, math.nan, 1.0]}, "scaler.scale is [1.0, nan, 1.0]"),
        (IMAGE, {"data__input_shape": [4, 8, 8]}, "data.input_shape is [4, 8, 8]; an image model has 1 or 3 channels"),
        (IMAGE, {"data__columns": {}}, "data.columns is {}, but an image model reads no columns"),
        (IMAGE, {"data__pixel_max": 0}, "data.pixel_max is 0; valid: null or a positive number"),
    ],
)  # fmt: skip
def test_a_bundle_json_that_contradicts_itself_is_refused_naming_the_field_and_value(spec, edits, says):
    with pytest.raises(Invalid) as refused:
        read_contract(bundle_state(spec, **edits), 2)
    assert str(refused.value).startswith(says)


def test_a_required_field_a_file_lacks_is_named_and_an_optional_one_reads_as_the_default():
    state = bundle_state(TABLE)
    del state["data"]["train_size"], state["data"]["class_counts"]
    spec, _ = read_contract(state, 2)
    assert (spec.train_size, spec.class_counts) == (0, None)
    del state["data"]["task"]
    with pytest.raises(Invalid, match=r"^data.task is missing$"):
        read_contract(state, 2)


@pytest.mark.parametrize(("mb", "limit"), [(10, 10_000_000), (2.5, 2_500_000), (1e-9, 1)])
def test_max_request_mb_is_millions_of_bytes_and_at_least_one(mb, limit):
    assert checked_limit(mb) == limit


@pytest.mark.parametrize("mb", [0, -1, math.nan, math.inf, "ten", True, None])
def test_max_request_mb_that_is_no_positive_finite_number_is_refused(mb):
    with pytest.raises(UserError, match=r"max_request_mb=.* is not a size; give a positive number of MB"):
        checked_limit(mb)


@pytest.mark.parametrize("port", [80, 1023, 65536, "http"])
def test_serve_py_s_port_is_one_litserve_takes_and_no_privileged_one(port):
    with pytest.raises(UserError, match=r"is not a port; give an integer from 1024 to 65535 \(ports below 1024 are"):
        Settings.checked(port, 10)


def test_a_refused_value_is_shown_whole_up_to_60_characters_and_cut_with_dots_beyond():
    fits = "x" * 58  # its repr, quotes included, is 60 characters
    assert short(fits) == repr(fits)
    cut = short("y" * 200)
    assert len(cut) == 60 and cut == repr("y" * 200)[:57] + "..."


def test_a_bundle_is_given_as_bundle_and_model_is_refused_as_its_key(capsys):
    assert names_bundle(["bundle=/b", "data.csv=x.csv"])
    assert not names_bundle(["bundle=null", "ckpt_path=/run"]) and not names_bundle(["ckpt_path=/run"])
    for arg in ("model=/b", "+model=/b", "++model=/b"):
        with pytest.raises(SystemExit) as exited:
            names_bundle([arg])
        assert exited.value.code == 2
        assert "give the exported model as bundle=DIR" in capsys.readouterr().err


def test_exactly_one_of_a_checkpoint_and_a_bundle_is_predicted_from():
    one_model("/run", None)
    one_model(None, "/bundle")
    with pytest.raises(UserError, match="not both$"):
        one_model("/run", "/bundle")
    with pytest.raises(UserError, match="not neither$"):
        one_model(None, None)


def test_a_bundle_s_prediction_drops_the_hydra_callbacks_that_import_lightning_and_keeps_the_booleans_check():
    dropped = without_callbacks(CONF_DIR)
    lightning_ones = {"fresh_run_dir", "mlflow_store", "sweep_end"}
    assert {f"~hydra.callbacks.{name}" for name in lightning_ones} <= set(dropped)
    assert not [name for name in dropped if "boolean_settings" in name]


def bundle_of(folder, spec: DataSpec) -> Bundle:
    """A bundle of `spec` in `folder` (its scaler, which loading the network does not read, the table's)."""
    return Bundle(folder, "onnx", "model.onnx", spec, SCALERS[TABLE], 2, {})


def session(path, inputs: int, width: int, outputs: list[list[int]], dtype: int = TensorProto.FLOAT):
    """onnxruntime's session of a graph that sums `inputs` inputs of shape (N, width) and multiplies the
    sum by one weight per output, of shape (width, *tail): an output of shape (N, *tail) each."""
    numpy_type = helper.tensor_dtype_to_np_dtype(dtype)
    ins = [helper.make_tensor_value_info(f"x{i}", dtype, ["N", width]) for i in range(inputs)]
    outs = [helper.make_tensor_value_info(f"y{j}", dtype, ["N", *tail]) for j, tail in enumerate(outputs)]
    weights = [numpy_helper.from_array(np.ones((width, *tail), numpy_type), f"w{j}") for j, tail in enumerate(outputs)]
    nodes = [helper.make_node("Sum", [f"x{i}" for i in range(inputs)], ["s"])]
    nodes += [helper.make_node("MatMul", ["s", f"w{j}"], [f"y{j}"]) for j in range(len(outputs))]
    graph = helper.make_graph(nodes, "g", ins, outs, initializer=weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


F, D = TensorProto.FLOAT, TensorProto.DOUBLE
BUNDLE_INPUT = "bundle.json's data.input_shape is [3], but the network takes"


@pytest.mark.parametrize(
    "network, says",
    [
        ((1, 3, [[2]]), None),
        ((1, 3, [[2], [2]]), "the network has 1 inputs and 2 outputs, export.py writes 1 and 1"),
        ((2, 3, [[2]]), "the network has 2 inputs and 1 outputs, export.py writes 1 and 1"),
        ((1, 4, [[2]]), f"{BUNDLE_INPUT} tensor(float) of shape ['N', 4]"),
        ((1, 3, [[2]], D), f"{BUNDLE_INPUT} tensor(double) of shape ['N', 3]"),
        ((1, 3, [[3]]), "bundle.json's data.class_names has 2 names, but the network gives outputs of shape ['N', 3]"),
    ],
    ids=["matches", "two-outputs", "two-inputs", "wider", "float64", "three-classes"],
)
def test_a_network_that_disagrees_with_bundle_json_is_named_by_what_disagrees(tmp_path, network, says):
    assert network_mismatch(session(tmp_path / "model.onnx", *network), bundle_of(tmp_path, TABLE)) == says


def test_a_regression_network_gives_one_value_per_row(tmp_path):
    spec = DataSpec(Task.REGRESSION, InputKind.TABLE, (3,), columns=COLUMNS)
    assert network_mismatch(session(tmp_path / "a.onnx", 1, 3, [[]]), bundle_of(tmp_path, spec)) is None
    wide = network_mismatch(session(tmp_path / "b.onnx", 1, 3, [[1]]), bundle_of(tmp_path, spec))
    assert wide == "the network gives outputs of shape ['N', 1], a regression gives [N]"


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "No graph was found in the protobuf."), (bytes(range(256)) * 4, "Protobuf parsing failed.")],
    ids=["empty", "noise"],
)
def test_a_network_file_onnxruntime_cannot_load_is_one_line_with_its_reason(tmp_path, content, reason):
    folder = tmp_path / "a failed: b"  # onnxruntime's reason is read after its message's last " failed:"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(content)
    with pytest.raises(UserError) as refused:
        session_of(bundle_of(folder, TABLE))
    assert f"model.onnx is not an ONNX model onnxruntime can load ({reason}); export" in str(refused.value)


def test_an_npy_of_inputs_is_read_as_a_plain_numeric_array_and_never_unpickled(tmp_path):
    pickled = np.array([MakesADir(str(tmp_path / "ran")), 1], dtype=object)
    np.save(tmp_path / "pickled.npy", pickled, allow_pickle=True)
    with pytest.raises(UserError, match=r"is not a plain numeric .npy array \(Object arrays cannot be loaded when"):
        read_npy(tmp_path / "pickled.npy", TABLE)
    assert not (tmp_path / "ran").exists()
    np.save(tmp_path / "words.npy", np.array([["a", "b", "c"]]))
    with pytest.raises(UserError, match=r"words.npy' holds <U1 values; save a numeric array"):
        read_npy(tmp_path / "words.npy", TABLE)
    with open(tmp_path / "zipped.npy", "wb") as f:  # np.savez's archive under an .npy name
        np.savez(f, x=np.zeros((1, 3)))
    with pytest.raises(UserError, match=r"zipped.npy' holds NpzFile values; save a numeric array"):
        read_npy(tmp_path / "zipped.npy", TABLE)
    np.save(tmp_path / "ints.npy", np.array([[1, 2, 3]]))
    assert read_npy(tmp_path / "ints.npy", TABLE).dtype == np.float32
    gray = DataSpec(Task.MULTICLASS, InputKind.IMAGE, (1, 4, 4), ("a", "b"))
    np.save(tmp_path / "pixels.npy", np.zeros((2, 4, 4), np.uint8))  # (N, H, W): one channel
    x = read_npy(tmp_path / "pixels.npy", gray)
    assert x.shape == (2, 1, 4, 4) and x.dtype == np.uint8  # pixels stay bytes, as image files are read


@pytest.mark.parametrize(
    "spec, shape, expects",
    [
        (DataSpec(Task.REGRESSION, InputKind.TABLE, (1,)), (2, 3), "(N, 1)"),
        (DataSpec(Task.MULTICLASS, InputKind.IMAGE, (1, 4, 6), ("a", "b")), (2, 4, 5), "(N, 1, 4, 6) or (N, 4, 6)"),
        (IMAGE, (2, 1, 8, 8), "(N, 3, 8, 8)"),
    ],
    ids=["table", "gray", "rgb"],
)
def test_an_npy_of_another_shape_is_refused_with_the_shapes_this_model_takes(tmp_path, spec, shape, expects):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    with pytest.raises(UserError) as refused:
        read_npy(tmp_path / "x.npy", spec)
    assert str(refused.value).endswith(f"x.npy' has shape {shape}; this model expects {expects}")


def test_a_bundle_folder_that_is_not_one_is_named_with_what_it_is(tmp_path):
    (tmp_path / "file").write_text("x")
    for folder, found in ((tmp_path / "missing", "does not exist"), (tmp_path / "file", "is a file, not a folder")):
        with pytest.raises(UserError) as refused:
            read_bundle(folder)
        assert str(refused.value).startswith(f"bundle={str(folder)!r} {found}; give the folder export.py wrote")


VERSIONS = [("[2]", "None"), ('{"bundle_version": true}', "True"), ('{"bundle_version": "2"}', "'2'"),
            ('{"bundle_version": 3}', "3")]  # fmt: skip


@pytest.mark.parametrize("content, found", VERSIONS)
def test_a_bundle_json_of_another_version_is_refused_naming_the_versions_this_litlab_reads(tmp_path, content, found):
    (tmp_path / "bundle.json").write_text(content)
    with pytest.raises(UserError) as refused:
        read_bundle(tmp_path)
    assert str(refused.value) == (f"bundle={str(tmp_path)!r}: bundle.json is of bundle_version {found}, this litlab "
                                  "reads 1 and 2; export the model again (litlab export ckpt_path=RUN)")  # fmt: skip


def test_a_csv_of_inputs_is_named_as_input_in_every_refusal(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("x,y,c\n")
    (tmp_path / "short.csv").write_text("x,y\n1,2\n")
    refusals = {"missing.csv": "could not be read as CSV: [Errno 2]", "empty.csv": "could not be read as CSV: No",
                "header.csv": "holds no inputs (0 rows)", "short.csv": "lacks the column(s) ['c']"}  # fmt: skip
    for name, says in refusals.items():
        with pytest.raises(UserError) as refused:
            read_csv(tmp_path / name, TABLE)
        assert str(refused.value).startswith(f"input={str(tmp_path / name)!r} {says}")


def test_inputs_with_a_value_that_is_not_finite_are_refused_naming_the_file_column_and_row(tmp_path):
    pixels = np.zeros((3, 3, 8, 8), np.float32)
    pixels[2, 1, 4, 4] = np.nan
    np.save(tmp_path / "pixels.npy", pixels)
    with pytest.raises(UserError) as refused:
        read_inputs(tmp_path / "pixels.npy", IMAGE)  # images: no column to name
    assert str(refused.value).endswith("pixels.npy' has values that are not finite (inf or NaN), in 1 input(s), the "
                                       "first at row 2; give finite numbers")  # fmt: skip
    np.save(tmp_path / "x.npy", np.array([[1.0, 2.0, 3.0], [1.0, np.inf, 3.0]], np.float32))
    with pytest.raises(UserError) as refused:
        read_inputs(tmp_path / "x.npy", TABLE)
    assert str(refused.value) == (f"input={str(tmp_path / 'x.npy')!r} has values that are not finite (inf or NaN) "
                                  "in ['y'], in 1 input(s), the first at row 1; give finite numbers")  # fmt: skip


def test_predictions_go_to_a_new_file_in_a_folder_and_never_over_anything(tmp_path):
    (tmp_path / "old.csv").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "gone.csv")
    assert check_new(tmp_path / "sub" / "new.csv") == tmp_path / "sub" / "new.csv"
    old = tmp_path / "old.csv"
    refusals = {tmp_path: "is a folder; give the path of a new CSV file", old: "exists; predict.py does not overwrite",
                tmp_path / "link.csv": "exists;", old / "x.csv": f"{str(old)!r} is a file, not a folder"}  # fmt: skip
    for output, says in refusals.items():
        with pytest.raises(UserError) as refused:
            check_new(output)
        assert str(refused.value).startswith(f"output={str(output)!r}") and says in str(refused.value)

"""The data contract (litlab.data_spec): every DataModule describes its data with a DataSpec, the
checkpoint carries it, and nothing outside the data package guesses the data's kind from arrays."""

import json
import re

import pytest
import torch
from sklearn import datasets

from litlab.checkpoints import store
from litlab.compat import datamodule_state
from litlab.data_spec import Columns, DataSpec, InputKind, Task, from_datamodule_state
from litlab.inference.checkpoint import predict
from litlab.run.build import build_datamodule
from tests.helpers.config import ROOT, compose_cfg

KINDS = {
    "digits": InputKind.IMAGE,
    "breast_cancer": InputKind.TABLE,
    "diabetes": InputKind.TABLE,
    "synthetic_regression": InputKind.TABLE,
}


@pytest.mark.parametrize(("data", "kind"), KINDS.items())
def test_every_datamodule_describes_its_data(tmp_path, data, kind):
    dm = build_datamodule(compose_cfg(tmp_path, f"data={data}"))
    spec = dm.spec
    assert spec.kind is kind and len(spec.input_shape) == kind.dims
    x, y = dm.split_tensors("train").x, dm.split_tensors("train").y
    assert tuple(x.shape[1:]) == spec.input_shape and spec.train_size == len(y)
    assert (spec.columns is not None) == (kind is InputKind.TABLE)
    if spec.task.is_classification:
        assert spec.class_names and len(spec.class_names) == spec.num_classes >= 2
    else:  # the target scale the model standardizes with: the train split's (ddof 0)
        assert spec.target_mean == pytest.approx(float(y.double().mean()))
        assert spec.target_std == pytest.approx(float(y.double().std(correction=0)))
    # What goes into a checkpoint: plain values that load with weights_only=True, and back; and into bundle.json.
    assert DataSpec.from_state(spec.to_state()) == spec
    assert DataSpec.from_state(json.loads(json.dumps(spec.to_state()))) == spec


def test_a_spec_refuses_a_shape_that_contradicts_its_kind():
    with pytest.raises(ValueError, match="image input has 3 dims"):
        DataSpec(task=Task.MULTICLASS, kind=InputKind.IMAGE, input_shape=(64,), class_names=("a", "b"))
    with pytest.raises(ValueError, match="needs 2\\+ class_names"):
        DataSpec(task=Task.BINARY, kind=InputKind.TABLE, input_shape=(3,), class_names=None)


def test_a_tables_one_hot_map_is_read_off_its_feature_names():
    """pandas.get_dummies names a category's feature `<column>_<category>`; the longest column name that
    prefixes a feature owns it, and a numeric column keeps its own name."""
    columns = Columns(
        inputs=("age", "color", "color_tone", "size"),
        categorical=("color", "color_tone", "size"),
        features=("age", "color_red", "color_blue", "color_tone_dark", "size_1_2", "size_big"),
    )
    assert columns.one_hot == {
        "color": {"red": "color_red", "blue": "color_blue"},
        "color_tone": {"dark": "color_tone_dark"},
        "size": {"1_2": "size_1_2", "big": "size_big"},
    }


def test_a_checkpoint_from_before_the_spec_gives_the_same_description(tmp_path):
    """tests/data/breast_cancer_logistic_v1.ckpt stored task, shape and columns as separate keys."""
    path = ROOT / "tests" / "data" / "breast_cancer_logistic_v1.ckpt"
    classes, ckpt = store.checkpoint_classes(path)
    spec = from_datamodule_state(datamodule_state(ckpt, classes["datamodule_class"]))
    names = tuple(datasets.load_breast_cancer().feature_names)
    assert spec == DataSpec(
        task=Task.BINARY, kind=InputKind.TABLE, input_shape=(30,), class_names=("malignant", "benign"),
        columns=Columns(inputs=names, categorical=(), features=names),
    )  # fmt: skip
    # and predict.py reads new rows with it: the same classes as the checkpoint's own test predictions
    rows = datasets.load_breast_cancer(as_frame=True).frame.drop(columns="target").head(8)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    frame = predict(str(path), str(tmp_path / "rows.csv"), str(tmp_path / "out.csv"))
    assert set(frame["pred_label"]) <= {"malignant", "benign"} and len(frame) == 8
    probs = torch.tensor(frame[["prob_malignant", "prob_benign"]].to_numpy())
    assert torch.allclose(probs.sum(1), torch.ones(8, dtype=probs.dtype))


def test_no_module_outside_the_data_package_reads_array_dimensions():
    """The data's kind is the DataSpec's `kind`: `x.ndim == 4`-style guesses stay out of litlab's
    other packages. Allowed: weight matrices (a parameter's ndim) and the layout of a user's .npy file."""
    allowed = {"p.ndim >= 2", "x.ndim == 3"}
    found = []
    for path in (ROOT / "src" / "litlab").rglob("*.py"):
        if "data" in path.relative_to(ROOT / "src" / "litlab").parts[:1]:
            continue
        for line in path.read_text().splitlines():
            found += [f"{path.name}: {m}" for m in re.findall(r"\w+\.ndim\s*[=!<>]=?\s*\d", line) if m not in allowed]
    assert not found, found

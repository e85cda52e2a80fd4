"""export.py and predict.py on a bundle: the exported network predicts the run's test split as the
checkpoint does (parity.json), bundle.json carries the preprocessing, and a bundle predicts in a
process where torch and Lightning cannot be imported, equal to the checkpoint's predictions."""

import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import datasets

from litlab.data_spec import DataSpec
from litlab.errors import UserError
from litlab.inference.checkpoint import predict
from litlab.inference.export import export
from litlab.inference.parity import summary
from litlab.inference.restore import restore
from litlab.run.train import train
from litlab.runtime.bundle import read_bundle
from litlab.runtime.predict_files import predict_bundle
from tests.helpers.config import ROOT, compose_cfg
from tests.helpers.deploy_models import edited_bundle, tiny_models

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

V1 = ROOT / "tests" / "data" / "bundles_v1"  # bundles of bundle_version 1 and their predictions then
V1_CKPT = ROOT / "tests" / "data" / "breast_cancer_logistic_v1.ckpt"  # the breast_cancer one's checkpoint

# predict.py run where `import torch` and `import lightning` fail.
NO_TORCH = """import runpy, sys
sys.modules["torch"] = None
sys.modules["lightning"] = None
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Checkpoints and ONNX bundles of a digits MLP (images) and a breast_cancer logistic regression (table)."""
    tiny = tiny_models(tmp_path_factory)
    found = {
        "digits": (str(tiny.digits_ckpt), tiny.digits_bundle),
        "cancer": (str(tiny.cancer_ckpt), tiny.cancer_bundle),
    }
    return tmp_path_factory.mktemp("export"), found


def test_an_onnx_bundle_reproduces_the_checkpoint_on_the_test_split(runs):
    _, found = runs
    for name, rows in (("digits", 270), ("cancer", 86)):
        folder = found[name][1]
        assert sorted(p.name for p in folder.iterdir()) == ["bundle.json", "model.onnx", "parity.json"]
        parity = json.loads((folder / "parity.json").read_text())
        assert parity["rows"] == rows
        for batch in ("batch_1", "batch_N"):
            assert parity[batch]["agreement"] == 1.0
            assert parity[batch]["max_abs_diff"] < 1e-5
        said = summary(parity)  # what export prints
        assert (
            said.startswith(f"on {rows} test rows, batch 1: max |diff| ") and said.count("classes agree 100.00%") == 2
        )
    digits = json.loads((found["digits"][1] / "bundle.json").read_text())
    assert digits["format"] == "onnx" and digits["temperature"] == 1.0 and "softmax" in digits["graph_applies"]
    assert digits["bundle_version"] == 2
    data = digits["data"]  # the DataSpec's own form, as in the checkpoint
    assert data["input_shape"] == [1, 8, 8] and data["pixel_max"] == 16.0 and data["columns"] is None
    assert DataSpec.from_state(data) == restore(found["digits"][0]).spec
    assert np.asarray(digits["scaler"]["shift"]).shape == (1, 1, 1)  # one statistic per channel
    assert {"torch", "onnx", "onnxruntime"} <= set(digits["versions"])
    cancer = json.loads((found["cancer"][1] / "bundle.json").read_text())
    assert cancer["data"]["class_names"] == ["malignant", "benign"] and len(cancer["scaler"]["shift"]) == 30
    # the preprocessing a program without litlab follows (docs/deploy.md runs it: tests/test_install.py)
    recipe = digits["raw_inputs"]
    assert recipe["size"] == [8, 8] and recipe["channels"] == 1 and recipe["pixel_scale"] == 16 / 255
    assert recipe["resize_filter"] == "PIL.Image.Resampling.BILINEAR" and recipe["convert_modes"]["P"] == "RGBA"
    assert cancer["raw_inputs"]["one_hot"] == {}  # 30 numeric columns
    assert cancer["data"]["columns"]["inputs"] == list(datasets.load_breast_cancer().feature_names)


def run_without_torch(tmp_path, *args: str) -> subprocess.CompletedProcess:
    wrapper = tmp_path / "no_torch.py"
    wrapper.write_text(NO_TORCH)
    return subprocess.run(
        [sys.executable, str(wrapper), str(ROOT / "predict.py"), *args, f"paths.log_dir={tmp_path / 'logs'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def assert_same(predicted: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(predicted.columns) == list(expected.columns)
    assert (predicted["pred_class"] == expected["pred_class"]).all()
    probs = [c for c in expected.columns if c.startswith("prob_")]
    np.testing.assert_allclose(predicted[probs].to_numpy(), expected[probs].to_numpy(), rtol=0, atol=1e-5)


def test_predict_on_a_bundle_needs_no_torch_and_equals_the_checkpoints_predictions(runs, tmp_path):
    _, found = runs
    rows = datasets.load_breast_cancer(as_frame=True).frame.sample(40, random_state=0)
    rows.to_csv(tmp_path / "rows.csv", index=False)  # the target column too: only the features are read
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[:12]):
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(pictures / f"{i:02d}.png")
    for name, given in (("cancer", tmp_path / "rows.csv"), ("digits", pictures)):
        ckpt, folder = found[name]
        proc = run_without_torch(tmp_path, f"bundle={folder}", f"input={given}", f"output={tmp_path / name}.csv")
        assert proc.returncode == 0, proc.stderr[-3000:]
        expected = predict(ckpt, str(given), str(tmp_path / f"{name}_ckpt.csv"))
        assert_same(pd.read_csv(tmp_path / f"{name}.csv"), expected)
    # Both paths scale the inputs as training did: the held-out truth, not only each other, agrees.
    assert (pd.read_csv(tmp_path / "cancer.csv")["pred_class"] == rows["target"].to_numpy()).mean() >= 0.9
    proc = run_without_torch(tmp_path, f"bundle={found['cancer'][1]}", f"ckpt_path={found['cancer'][0]}", "input=x")
    assert proc.returncode == 2 and "exactly one of ckpt_path=RUN" in proc.stderr


def test_a_bundle_of_version_1_predicts_as_when_it_was_exported(tmp_path):
    """tests/data/bundles_v1 (see tests/data/README.md): bundle.json's first layout, read into the same
    DataSpec and scaler as today's; the predictions equal those the code that exported them made."""
    rows = tmp_path / "rows.csv"
    datasets.load_breast_cancer(as_frame=True).data.head(8).to_csv(rows, index=False)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[:6]):  # pixels 0..255: the bundle's pixel_max is 16
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(pictures / f"{i}.png")
    for name, given in (("breast_cancer", rows), ("digits", pictures)):
        assert json.loads((V1 / name / "bundle.json").read_text())["bundle_version"] == 1
        predicted = predict_bundle(V1 / name, str(given), str(tmp_path / f"{name}.csv"))
        assert_same(predicted, pd.read_csv(V1 / f"{name}.predictions.csv"))
    assert_same(pd.read_csv(tmp_path / "breast_cancer.csv"), predict(str(V1_CKPT), str(rows), str(tmp_path / "c.csv")))
    checkpoint = restore(V1_CKPT)
    bundle = read_bundle(V1 / "breast_cancer")
    assert replace(bundle.spec, train_size=checkpoint.spec.train_size) == checkpoint.spec
    np.testing.assert_array_equal(bundle.scaler.shift, checkpoint.scaler.shift)
    assert read_bundle(V1 / "digits").spec.pixel_max == 16.0


def test_a_broken_bundle_of_version_1_is_refused_naming_its_own_fields(tmp_path):
    """bundle.json's checks name a field by its place in the file at hand (test_doors_deploy.py has version 2's)."""
    for name, field, value, says in (
        ("breast_cancer", "preprocessing.input_shape", "30", "preprocessing.input_shape is '30'"),
        ("breast_cancer", "preprocessing.scaler.shift", [0.0] * 29, "preprocessing.scaler.shift has shape (29,)"),
        ("digits", "preprocessing.image.pixel_max", -1, "preprocessing.image.pixel_max is -1"),
        ("digits", "preprocessing.class_names", None, "preprocessing.class_names is null, but a multiclass model"),
        ("digits", "preprocessing.columns", {"inputs": []}, "preprocessing.columns is {'inputs': []}, but an image"),
    ):
        with pytest.raises(UserError, match=re.escape(f"bundle.json's {says}")):
            read_bundle(edited_bundle(V1 / name, tmp_path / field, field, value))


@pytest.mark.slow
def test_a_failed_export_leaves_nothing(runs):
    """A refused export (parity) leaves no bundle and no partial folder; an existing bundle, an unknown
    format and the other settings are tests/test_doors_deploy.py's rows."""
    tmp, _ = runs
    diabetes = train(compose_cfg(tmp / "diabetes", "experiment=diabetes_linear"))["best_ckpt"]
    # float32 ONNX against PyTorch differs by ~3e-5 in the target's units (25..346): above 1e-9 of its std
    with pytest.raises(UserError, match=r"does not reproduce the checkpoint .*67 rows, batch_1: max abs diff"):
        export(diabetes, "onnx", tmp / "strict", tolerance=1e-9)
    assert sorted(p.name for p in tmp.iterdir() if "strict" in p.name) == []  # no bundle, no partial folder
    regression = export(diabetes, "onnx", tmp / "diabetes_bundle")
    assert json.loads((regression / "parity.json").read_text())["batch_N"]["max_abs_diff"] < 1e-3


def test_a_torch_export_bundle_has_parity_and_is_not_run_by_onnxruntime(runs, tmp_path):
    _, found = runs
    folder = export(found["digits"][0], "torch_export", tmp_path / "pt2")
    assert (folder / "model.pt2").is_file()
    parity = json.loads((folder / "parity.json").read_text())
    assert parity["batch_N"]["agreement"] == 1.0 and parity["batch_1"]["max_abs_diff"] < 1e-5
    assert json.loads((folder / "bundle.json").read_text())["format"] == "torch_export"
    proc = run_without_torch(tmp_path, f"bundle={folder}", "input=x.npy")
    assert proc.returncode == 2 and "is a torch_export bundle (model.pt2)" in proc.stderr


def test_the_runtime_and_the_data_contract_import_no_torch():
    """What a bundle's prediction imports: every module of runtime/ and readers/, and data_spec."""
    src = ROOT / "src" / "litlab"
    modules = ["litlab.data_spec"] + [
        f"litlab.{room}.{p.stem}" for room in ("runtime", "readers") for p in sorted((src / room).glob("*.py"))
    ]
    heavy = {"torch", "lightning", "torchvision"}
    code = f"import sys\nfor m in {modules}: __import__(m)\nprint(sorted({heavy} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"
    assert len(modules) >= 10  # the rooms were found


@pytest.mark.slow
def test_two_exports_into_one_folder_at_once_leave_one_whole_bundle(runs, tmp_path):
    """Both pass the check that `out` is new; the first rename wins, the other is one line, exit 2."""
    _, found = runs
    out = tmp_path / "bundle"
    command = [sys.executable, str(ROOT / "export.py"), f"ckpt_path={found['cancer'][0]}", "format=onnx", f"out={out}",
               f"hydra.run.dir={tmp_path}/run_{{}}"]  # fmt: skip
    procs = [
        subprocess.Popen([*command[:-1], command[-1].format(i)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = sorted((p.wait(timeout=240), p.stderr.read()) for p in procs if p.stderr)  # type: ignore[union-attr]
    assert [code for code, _ in results] == [0, 2], results
    lines = [line for line in results[1][1].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: out={str(out)!r}"), results[1][1]
    assert json.loads((out / "bundle.json").read_text())["format"] == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial folder left

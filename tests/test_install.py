"""litlab as a user installs it: `pip install <checkout>` into a fresh venv (no system packages, not
editable), then `litlab ...` in an empty directory. The base install is the torch-free runtime: it
predicts and serves a bundle as the checkout does; `litlab[train]` trains, sweeps, evaluates and
exports, each run under the current directory. Both build venvs from the package index (PyPI and
this machine's wheels): slow, and skipped where no index answers."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import datasets

from tests.helpers.config import ROOT
from tests.helpers.deploy_models import tiny_models
from tests.helpers.doors import assert_refused
from tests.helpers.processes import free_port, started, stop
from tests.helpers.serving import post, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
INSTALL_TIMEOUT_S = 1200  # torch and its CUDA libraries from the index: ~2.5 min here, more on a cold cache
RUN_TIMEOUT_S = 300
QUIET = ["logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "extras.print_config=false"]


@pytest.fixture(autouse=True)
def no_venv_left(tmp_path: Path) -> Iterator[None]:
    """The test's venv and copy of the checkout go when it ends (the [train] venv is ~6 GB)."""
    yield
    for folder in ("venv", "checkout"):
        shutil.rmtree(tmp_path / folder, ignore_errors=True)


def index_answers(tmp: Path) -> str | None:
    """None if pip can fetch a package the runtime needs from its index now, else why not."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(tmp), "litserve>=0.2.10,<0.3"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "pip download litserve timed out"
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]


def installed(tmp: Path, extras: str = "") -> Path:
    """A fresh venv in `tmp` with `pip install <checkout>[extras]`; its bin/ folder. The checkout's
    pyproject.toml and src/ are copied first, so that the build writes nothing into the checkout."""
    reason = index_answers(tmp / "probe")
    if reason:
        pytest.skip(f"no package index answers: {reason}")
    source = tmp / "checkout"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=120)
    bin_dir = tmp / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", f"{source}{extras}"]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    where = subprocess.run([str(bin_dir / "python"), "-c", "import litlab; print(litlab.__file__)"], cwd=tmp,
                           capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert where.startswith(str(tmp / "venv")), where  # the installed copy, not the checkout's src/
    return bin_dir


def litlab(bin_dir: Path, cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    """`litlab ARGS` of that venv, run in `cwd`; it must exit with `code`."""
    proc = subprocess.run([str(bin_dir / "litlab"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert proc.returncode == code, f"litlab {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc


def only(pattern: str, folder: Path) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_the_base_install_runs_a_bundle_without_torch(tmp_path, tmp_path_factory):
    bin_dir = installed(tmp_path)
    torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True, text=True, timeout=60)
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr
    tiny = tiny_models(tmp_path_factory)  # trained and exported by the checkout's litlab
    empty = tmp_path / "empty"
    empty.mkdir()
    for bundle, data in ((tiny.cancer_bundle, tiny.rows), (tiny.digits_bundle, tiny.pictures)):
        litlab(bin_dir, empty, "predict", f"bundle={bundle}", f"input={data}", f"output={bundle.name}.csv")
        cmd = [sys.executable, "-m", "litlab.run.cli", "predict", f"bundle={bundle}", f"input={data}",
               f"output={tmp_path / bundle.name}.csv"]  # fmt: skip
        subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=RUN_TIMEOUT_S, check=True)
        ours, checkouts = pd.read_csv(empty / f"{bundle.name}.csv"), pd.read_csv(tmp_path / f"{bundle.name}.csv")
        assert list(ours.columns) == list(checkouts.columns) and ours["pred_class"].tolist() == checkouts[
            "pred_class"].tolist()  # fmt: skip
        probs = [c for c in ours.columns if c.startswith("prob_")]
        np.testing.assert_allclose(ours[probs].to_numpy(), checkouts[probs].to_numpy(), rtol=0, atol=1e-6)
    litlab(bin_dir, empty, "predict", f"bundle={tiny.cancer_bundle}", f"input={tiny.rows}")  # into the empty dir
    only("logs/predict/runs/*/predictions.csv", empty)
    refused = litlab(bin_dir, empty, "train", "data=breast_cancer", code=2)
    assert_refused(refused.returncode, refused.stdout, refused.stderr, 'lacks: pip install "litlab[train]"')
    serve_a_bundle(bin_dir, empty, tiny.cancer_bundle, pd.read_csv(empty / "cancer_bundle.csv"), tiny.rows)


def serve_a_bundle(bin_dir: Path, cwd: Path, bundle: Path, expected: pd.DataFrame, rows: Path) -> None:
    """`litlab serve bundle=DIR` answers /predict as `litlab predict` did."""
    port = free_port()
    log = cwd / "serve.log"
    cmd = [str(bin_dir / "litlab"), "serve", f"bundle={bundle}", f"port={port}"]
    with open(log, "w") as out, started(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True) as (proc,):  # fmt: skip
        try:
            wait_healthy(proc, port, log)
            status, answer = post(port, {"rows": pd.read_csv(rows).to_dict(orient="records")})
        finally:
            stop(proc, group=True)
    assert status == 200, answer
    assert [p["class"] for p in answer["predictions"]] == expected["pred_class"].tolist()


def test_the_train_extra_trains_sweeps_evaluates_exports_and_predicts_under_the_current_dir(tmp_path):
    bin_dir = installed(tmp_path, "[train]")
    work = tmp_path / "work"
    work.mkdir()
    litlab(bin_dir, work, "train", "data=breast_cancer", "model=logistic_regression", "trainer.max_epochs=2", *QUIET)
    run = only("logs/train/runs/*", work)
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed" and (run / "train.log").is_file()

    litlab(bin_dir, work, "train", "-m", "model=mlp,cnn", "data=digits", "trainer.max_epochs=1", *QUIET)
    sweep = only("logs/train/multiruns/*", work)
    assert [json.loads((sweep / job / "metrics.json").read_text())["status"] for job in ("0", "1")] == ["completed"] * 2
    assert (sweep / "report.md").is_file()

    litlab(bin_dir, work, "evaluate", f"ckpt_path={run}", "trainer=cpu", "trainer.enable_progress_bar=false")
    assert only("logs/eval/runs/*/evaluate.log", work).is_file()
    litlab(bin_dir, work, "export", f"ckpt_path={run}", "out=bundle")
    rows = work / "rows.csv"
    datasets.load_breast_cancer(as_frame=True).data.head(5).to_csv(rows, index=False)
    litlab(bin_dir, work, "predict", "bundle=bundle", f"input={rows}", "output=predictions.csv")
    assert len(pd.read_csv(work / "predictions.csv")) == 5

    user_conf = tmp_path / "my_conf"
    (user_conf / "model").mkdir(parents=True)
    (user_conf / "model" / "my_mlp.yaml").write_text("defaults:\n  - mlp\n  - _self_\n\nhidden_sizes: [7, 5]\n")
    litlab(bin_dir, work, "train", "--config-dir", str(user_conf), "model=my_mlp", "data=breast_cancer",
           "trainer.max_epochs=1", "hydra.run.dir=mine", *QUIET)  # fmt: skip
    assert "hidden_sizes:\n  - 7\n  - 5\n" in (work / "mine" / "config.yaml").read_text()


def test_the_root_script_trains_into_the_current_dir(tmp_path):
    """`python train.py` from another folder: the checkout's shim, its run under that folder."""
    cmd = [sys.executable, str(ROOT / "train.py"), "data=breast_cancer", "model=logistic_regression",
           "trainer.max_epochs=1", *QUIET]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = only("logs/train/runs/*", tmp_path)
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_the_deploy_guide_s_example_predicts_as_litlab_with_onnxruntime_numpy_and_pillow_alone(
    tmp_path, tmp_path_factory
):
    """docs/deploy.md's onnxruntime-only example, as it stands there, in a venv without torch or
    litlab: the same probabilities as `litlab predict` for images that need each step of
    bundle.json's raw_inputs (colour to gray, alpha, a palette, a resize)."""
    reason = index_answers(tmp_path / "probe")
    if reason:
        pytest.skip(f"no package index answers: {reason}")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = str(tmp_path / "venv" / "bin" / "python")
    alone = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv's packages, nothing else
    pip = [python, "-m", "pip", "install", "--quiet", "numpy>=1.26,<3", "pillow>=10,<14", "onnxruntime>=1.20,<2"]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=alone)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for absent in ("torch", "litlab"):
        found = subprocess.run([python, "-c", f"import {absent}"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=60, env=alone)  # fmt: skip
        assert found.returncode != 0 and f"No module named '{absent}'" in found.stderr
    guide = (ROOT / "docs" / "deploy.md").read_text()
    (tmp_path / "predict_bundle.py").write_text(guide.split("```python\n", 1)[1].split("```", 1)[0])
    tiny, pictures = tiny_models(tmp_path_factory), tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[4:8]):
        gray = Image.fromarray((image * 255 / 16).round().astype(np.uint8))
        big = gray.resize((24, 24), Image.Resampling.NEAREST)  # resized back to 8x8 by the recipe
        variants = {"rgb": big.convert("RGB"), "rgba": big.convert("RGBA"), "gray": gray, "palette": big.convert("P")}
        for kind, variant in variants.items():
            variant.save(pictures / f"{i}_{kind}.png")
    files = sorted(str(p) for p in pictures.iterdir())
    ran = subprocess.run([python, str(tmp_path / "predict_bundle.py"), str(tiny.digits_bundle), *files],
                         cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=alone)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    theirs = {Path(line.split()[0]).name: [float(v) for v in line.split()[2:]] for line in ran.stdout.splitlines()}
    predict = [sys.executable, "-m", "litlab.run.cli", "predict", f"bundle={tiny.digits_bundle}", f"input={pictures}",
               f"output={tmp_path / 'litlab.csv'}"]  # fmt: skip
    subprocess.run(predict, cwd=tmp_path, capture_output=True, timeout=RUN_TIMEOUT_S, check=True)
    ours = pd.read_csv(tmp_path / "litlab.csv").set_index("file")
    probs = [c for c in ours.columns if c.startswith("prob_")]
    assert sorted(theirs) == sorted(ours.index) and len(theirs) == 16
    np.testing.assert_allclose([theirs[name] for name in ours.index], ours[probs].to_numpy(), rtol=0, atol=1e-6)

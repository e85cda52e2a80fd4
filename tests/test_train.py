"""End to end, as a user runs it: train.py, evaluate.py, resume, multirun, TensorBoard files."""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from litlab.evaluate import load_checkpoint
from litlab.train import train
from tests.conftest import run_in_process


def events(run_dir: Path) -> EventAccumulator:
    ea = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def hparams_logged(ea: EventAccumulator) -> tuple[set[str], set[str]]:
    """(hyperparameter names, metric names) that the HParams tab will show."""
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metrics = {m.name.tag for m in experiment.experiment.metric_infos}
    return set(start.session_start_info.hparams), metrics


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    """`python train.py` exactly as the README says, with logs in a temp dir."""
    logs = tmp_path_factory.mktemp("logs")
    code, out, err = run_in_process("train.py", f"paths.log_dir={logs}")
    assert code == 0, err[-3000:]
    (logs / "stdout.txt").write_text(out)
    (run_dir,) = (logs / "train" / "runs").iterdir()
    return run_dir


def test_default_train_reaches_95_percent_on_digits(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["test"]["test/acc"] >= 0.95
    assert metrics["monitor"] == "val/loss" and metrics["optimized_metric"] == metrics["val"]["val/loss"]
    assert metrics["wall_time_s"] > 0 and metrics["overrides"] == [f"paths.log_dir={default_run.parents[2]}"]
    best = Path(metrics["best_ckpt"])
    assert best.parent == default_run / "checkpoints" and best.is_file()
    assert (default_run / "checkpoints" / "last.ckpt").is_file()
    stdout = (default_run.parents[2] / "stdout.txt").read_text()
    assert "CONFIG" in stdout and "_target_: litlab.models.MLP" in stdout  # the rich config tree
    saved = OmegaConf.load(default_run / "config.yaml")  # the resolved config, 'auto' filled in
    assert saved.monitor.metric == "val/loss" and saved.monitor.mode == "min"
    assert saved.paths.output_dir == str(default_run)


def test_tensorboard_has_scalars_lr_hparams_and_confusion_matrix(default_run):
    ea = events(default_run)
    scalars = set(ea.Tags()["scalars"])
    assert {
        "train/loss_step",
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/f1",
        "test/acc",
        "test/f1",
        "lr-Adam",
    } <= scalars
    assert len(ea.Scalars("val/acc")) >= 10  # one per epoch
    assert "test/confusion_matrix" in ea.Tags()["images"]
    hparams, metric_tags = hparams_logged(ea)
    assert {"model.hidden_sizes", "optimizer.lr", "data.batch_size", "seed"} <= hparams
    assert {"hp/val/acc", "hp/test/acc"} <= metric_tags
    test_acc = json.loads((default_run / "metrics.json").read_text())["test"]["test/acc"]
    assert ea.Scalars("hp/test/acc")[-1].value == pytest.approx(test_acc)


def test_evaluate_reproduces_test_metrics_from_checkpoint_alone(default_run, tmp_path, cli, monkeypatch):
    metrics = json.loads((default_run / "metrics.json").read_text())
    # From another directory, with no training config: everything comes from the checkpoint.
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("evaluate.py", f"ckpt_path={metrics['best_ckpt']}", f"paths.log_dir={tmp_path}")
    assert code == 0, err
    (eval_dir,) = (tmp_path / "eval" / "runs").iterdir()
    evaluated = json.loads((eval_dir / "metrics.json").read_text())["test"]
    for name, value in metrics["test"].items():
        assert evaluated[name] == pytest.approx(value, abs=1e-6), name


def test_resume_from_last_checkpoint_continues_at_the_right_epoch(make_cfg, tmp_path):
    first = make_cfg("logger=csv", "trainer.max_epochs=2")
    train(first)
    last = tmp_path / "checkpoints" / "last.ckpt"
    resumed_dir = tmp_path / "resumed"
    second = make_cfg("logger=csv", "trainer.max_epochs=4", f"ckpt_path={last}")
    second.paths.output_dir = str(resumed_dir)
    metrics = train(second)
    log = pd.read_csv(resumed_dir / "csv" / "metrics.csv")
    trained_epochs = sorted(log.dropna(subset=["train/loss"])["epoch"].unique())
    assert trained_epochs == [2, 3]
    assert metrics["epochs"] == 4


def test_regression_run_logs_scatter_and_mse_monitor(make_cfg, tmp_path):
    metrics = train(make_cfg("data=diabetes", "model=linear_regression", "optimizer.lr=1.0", "logger=tensorboard"))
    assert metrics["monitor"] == "val/loss" and metrics["mode"] == "min"
    ea = events(tmp_path)
    assert "test/pred_vs_true" in ea.Tags()["images"]
    assert {"train/mse", "val/r2", "test/mae"} <= set(ea.Tags()["scalars"])


def test_fast_dev_run_tests_final_weights(make_cfg, tmp_path):
    metrics = train(make_cfg("debug=fast_dev_run"))
    assert metrics["best_ckpt"] is None and "test/acc" in metrics["test"]


def test_multirun_gives_each_job_its_own_dir(tmp_path, cli):
    code, _, err = cli(
        "train.py",
        "-m",
        "model=mlp,cnn",
        "optimizer.lr=0.001,0.01",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        "trainer.enable_progress_bar=false",
        f"paths.log_dir={tmp_path}",
    )
    assert code == 0, err
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        seen.add(tuple(o for o in metrics["overrides"] if o.startswith(("model=", "optimizer.lr="))))
        (event_file, *_) = (job / "tensorboard").rglob("events.out.tfevents.*")
        assert "model=" in event_file.parent.name  # the TensorBoard run is named by the overrides
    assert seen == {
        ("model=mlp", "optimizer.lr=0.001"),
        ("model=mlp", "optimizer.lr=0.01"),
        ("model=cnn", "optimizer.lr=0.001"),
        ("model=cnn", "optimizer.lr=0.01"),
    }


def test_csv_run_round_trips_through_its_checkpoint(make_cfg, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": rng.choice(["red", "blue"], 200)})
    df["label"] = np.where(x[:, 0] + x[:, 1] > 0, "pos", "neg")
    df.to_csv(tmp_path / "table.csv", index=False)
    cfg = make_cfg(
        "data=csv",
        f"data.path={tmp_path / 'table.csv'}",
        "data.target=label",
        "model=logistic_regression",
        "optimizer.lr=0.05",
        "trainer.max_epochs=10",
    )
    metrics = train(cfg)
    assert metrics["test"]["test/acc"] >= 0.9

    model, dm = load_checkpoint(metrics["best_ckpt"])
    assert dm.class_names == ["neg", "pos"] and dm.scaler.fitted
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    again = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert again["test/acc"] == pytest.approx(metrics["test"]["test/acc"])

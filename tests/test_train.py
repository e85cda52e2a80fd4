"""End to end, as a user runs it: train.py, evaluate.py, resume, multirun, TensorBoard files."""

import json
import logging
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from litlab.inference.restore import restore
from litlab.run.train import train
from tests.helpers.config import LIGHT
from tests.helpers.outputs import events, experiment_summary, session_hparams
from tests.helpers.processes import run_in_process

pytestmark = pytest.mark.e2e  # every test here runs a whole job


def tensorboard_run(run_dir: Path) -> Path:
    """The run's TensorBoard dir, as its metrics.json records it."""
    return Path(json.loads((run_dir / "metrics.json").read_text())["tensorboard"])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    """`python train.py` exactly as the README says, with logs in a temp dir."""
    logs = tmp_path_factory.mktemp("logs")
    code, out, err = run_in_process("train.py", f"paths.log_dir={logs}")
    assert code == 0, err[-3000:]
    (logs / "stdout.txt").write_text(out)
    (logs / "stderr.txt").write_text(err)
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
    console = stdout + (default_run.parents[2] / "stderr.txt").read_text()
    assert "hidden_sizes=[256, 128]" in stdout and f"{default_run}/config.yaml" in stdout  # the config, compact
    assert "Linear(in_features=64, out_features=256" in stdout and "train_metrics" not in stdout  # the net's layers
    assert f"tensorboard --logdir {default_run}" in stdout.strip().splitlines()[-1]  # the answer, last
    assert f"{metrics['test']['test/acc']:.4f}" in stdout
    for noise in ("Tip:", "LeafSpec", "v_num", "Total FLOPs", "smaller than the logging interval", "Restoring states"):
        assert noise not in console, noise
    saved = OmegaConf.load(default_run / "config.yaml")  # the resolved config, 'auto' filled in
    assert saved.monitor.metric == "val/loss" and saved.monitor.mode == "min"
    assert saved.paths.output_dir == str(default_run)


def test_tensorboard_has_curves_hparams_final_metrics_and_confusion_matrix(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    run = tensorboard_run(default_run)
    assert run == default_run / "default"  # no overrides but the log dir, which names no setting
    ea = events(run)
    scalars = set(ea.Tags()["scalars"])
    assert {"train/loss_step", "train/loss", "train/acc", "val/loss", "val/acc", "val/f1", "trainer/lr-Adam"} <= scalars
    assert min(scalars).startswith("train/") and "trainer/epoch" in scalars  # the metrics' charts come first
    assert not any(t.startswith(("test/", "hp/")) for t in scalars)  # final results live in best/
    assert [e.step for e in ea.Scalars("val/acc")] == [e.step for e in ea.Scalars("train/acc")]  # no extra point
    assert len(ea.Scalars("val/acc")) == metrics["epochs"]
    assert "test/confusion_matrix" in ea.Tags()["images"]
    final = events(run / "best")
    for split in ("val", "test"):
        for name, value in metrics[split].items():
            assert final.Scalars(name)[-1].value == pytest.approx(value), name
    hparams = session_hparams(ea)
    assert {"data": "digits", "model": "mlp", "optimizer": "adam", "seed": 42}.items() <= hparams.items()
    assert hparams["model.hidden_sizes"] == "[256, 128]" and hparams["model.batch_norm"] is False
    assert {"optimizer.lr", "data.batch_size"} <= hparams.keys()
    assert not any("_target_" in k or k in ("model.loss", "data.device", "paths.log_dir") for k in hparams)
    assert hparams == metrics["hparams"]


def test_evaluate_reproduces_test_metrics_from_checkpoint_alone(default_run, tmp_path, cli, monkeypatch):
    metrics = json.loads((default_run / "metrics.json").read_text())
    # From another directory, with no training config: everything comes from the checkpoint.
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("evaluate.py", f"ckpt_path={metrics['best_ckpt']}", f"paths.log_dir={tmp_path}")
    assert code == 0, err
    (eval_dir,) = (tmp_path / "eval" / "runs").iterdir()
    evaluated = json.loads((eval_dir / "evaluation.json").read_text())["test"]
    for name, value in metrics["test"].items():
        assert evaluated[name] == pytest.approx(value, abs=1e-6), name


def test_resume_from_last_checkpoint_continues_at_the_right_epoch(make_cfg, tmp_path, caplog):
    first = make_cfg("logger=csv", "trainer.max_epochs=2", *LIGHT)
    train(first)
    last = tmp_path / "checkpoints" / "last.ckpt"
    resumed_dir = tmp_path / "resumed"
    second = make_cfg("logger=csv", "trainer.max_epochs=4", f"ckpt_path={last}", *LIGHT)
    second.paths.output_dir = str(resumed_dir)
    metrics = train(second)
    log = pd.read_csv(resumed_dir / "csv" / "metrics.csv")
    trained_epochs = sorted(log.dropna(subset=["train/loss"])["epoch"].unique())
    assert trained_epochs == [2, 3]
    assert metrics["epochs"] == 4
    # resumed again with the same trainer.max_epochs: nothing left to train, and it says so
    third = make_cfg("logger=csv", "trainer.max_epochs=4", f"ckpt_path={resumed_dir / 'checkpoints' / 'last.ckpt'}",
                     *LIGHT)  # fmt: skip
    third.paths.output_dir = str(tmp_path / "again")
    with caplog.at_level(logging.WARNING, logger="litlab.checkpoints.resume"):
        train(third)
    assert "has 4 of trainer.max_epochs=4 epochs: nothing left to train" in caplog.text


def test_regression_run_logs_scatter_and_mse_monitor(make_cfg, tmp_path):
    metrics = train(make_cfg("data=diabetes", "model=linear_regression", "optimizer.lr=1.0", "logger=tensorboard"))
    assert metrics["monitor"] == "val/loss" and metrics["mode"] == "min"
    ea = events(Path(metrics["tensorboard"]))
    assert "test/pred_vs_true" in ea.Tags()["images"]
    assert {"train/mse", "val/r2"} <= set(ea.Tags()["scalars"])
    assert "test/mae" in events(Path(metrics["tensorboard"]) / "best").Tags()["scalars"]
    assert metrics["hparams"]["model.loss"] == "mse"  # a regression setting, on a regression run


def test_fast_dev_run_tests_final_weights(make_cfg, tmp_path):
    metrics = train(make_cfg("debug=fast_dev_run"))
    assert metrics["best_ckpt"] is None and "test/acc" in metrics["test"]


@pytest.mark.slow
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
        *LIGHT,
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
    # TensorBoard: one run per job at the sweep root, named by what was swept; HParams on those columns
    runs = {f.parent.name for f in sweep.glob("*/events.out.tfevents.*")}
    assert runs == {f"model={m},optimizer.lr={lr}" for m in ("mlp", "cnn") for lr in ("0.001", "0.01")}
    hparams, metric_names = experiment_summary(sweep)
    assert hparams == {"model", "optimizer.lr"}
    assert {"best:val/loss", "best:val/acc", "best:test/acc"} <= metric_names
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

    restored = restore(metrics["best_ckpt"])
    model, dm = restored.model, restored.datamodule()
    assert dm.class_names == ["neg", "pos"] and dm.scaler.fitted
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    again = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert again["test/acc"] == pytest.approx(metrics["test"]["test/acc"])


def test_debug_overfit_memorises_one_batch_of_digits(tmp_path, cli):
    """The same batch every epoch (no reshuffle), so its loss goes to about zero, steadily."""
    run_dir = tmp_path / "run"
    code, _, err = cli("train.py", "debug=overfit", "logger=csv", "extras.print_config=false",
                       "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                       f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0, err[-3000:]
    (table,) = run_dir.rglob("metrics.csv")
    losses = pd.read_csv(table)["train/loss"].dropna().tolist()
    assert len(losses) == 100 and losses[-1] < 0.01
    assert sum(b > a for a, b in zip(losses, losses[1:], strict=False)) <= 2  # one batch: barely a step back


@pytest.mark.parametrize(
    ("overrides", "shown", "left_out"),
    [
        (["model=mlp"], ["l2=0.0", "class_weight=None", "steps_per_call=1"], ["loss="]),  # a classifier
        (["model=mlp", "data=diabetes"], ["loss=None", "l2=0.0"], ["class_weight="]),  # regression: the task's loss
        (["experiment=breast_cancer_logistic"], ["C=1.0"], ["steps_per_call=", "compile=", "cuda_graphs="]),  # L-BFGS
    ],
)
def test_the_config_line_shows_only_settings_that_apply(tmp_path, cli, overrides, shown, left_out):
    """The config line, and the HParams settings (metrics.json's hparams, MLflow's params) alike."""
    code, out, err = cli("train.py", *overrides, "trainer.max_epochs=1", "logger=[tensorboard]", *LIGHT,
                         "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert code == 0, err[-3000:]
    (overrides_line,) = [line for line in out.splitlines() if line.startswith("overrides ")]
    assert "logger=[tensorboard]" in overrides_line  # as typed, not read as rich markup
    (model_line,) = [line for line in out.splitlines() if line.startswith("model ")]
    assert all(s in model_line for s in shown) and not any(s in model_line for s in left_out), model_line
    hparams = json.loads((tmp_path / "run" / "metrics.json").read_text())["hparams"]
    assert all(f"model.{s.split('=')[0]}" in hparams for s in shown if not s.endswith("=None"))  # None: unset
    assert not any(f"model.{s.rstrip('=')}" in hparams for s in left_out), sorted(hparams)


def test_messages_are_true_for_the_optimizer_and_the_bar_shows_no_zero_speed(tmp_path, cli):
    from rich.progress import Progress

    from litlab.review.console import Speed

    code, out, err = cli("train.py", "debug=fast_dev_run", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-3000:]
    assert "not converged" not in out + err and "nan" not in out + err  # Adam's one smoke-test batch
    progress = Progress()
    progress.add_task("epoch 0", total=1)  # a full-batch epoch: one batch, no speed yet
    assert Speed(style="").render(progress.tasks[0]).plain == ""


def test_debug_profiler_writes_its_report_and_prints_the_slowest_hooks(tmp_path, cli):
    run_dir = tmp_path / "run"
    code, out, err = cli("train.py", "debug=profiler", "logger=none", "trainer.enable_progress_bar=false",
                         f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0, err[-3000:]
    fit = (run_dir / "fit-profile.txt").read_text()
    assert "FIT Profiler Report" in fit and "training_step" in fit  # Lightning's whole report, in the run dir
    assert (run_dir / "test-profile.txt").exists()
    printed = out + err
    head = f"fit: the 10 slowest hooks (full report: {run_dir / 'fit-profile.txt'})"
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(head))
    rows = lines[start + 2 : start + 12]
    totals = [float(row.split()[-3]) for row in rows]
    assert totals == sorted(totals, reverse=True) and all(row.startswith("  [") or "_" in row for row in rows)
    assert len(lines) < 150  # Lightning's own report printed is about a thousand lines


def test_a_ddp_rank_other_than_0_prints_no_warning_rank_0_prints_it_once(monkeypatch):
    """Every rank runs the same code and would warn alike: one warning per run, from rank 0."""
    import warnings

    from lightning.pytorch.utilities import rank_zero_only

    from litlab.review.console import quiet_third_party

    shown = {}
    for rank in (0, 1):
        monkeypatch.setattr(rank_zero_only, "rank", rank)  # as Lightning sets it from the launcher's environment
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_third_party()
            warnings.warn("each rank says this", UserWarning, stacklevel=1)
        shown[rank] = [str(w.message) for w in caught]
    assert shown == {0: ["each rank says this"], 1: []}

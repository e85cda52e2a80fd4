"""An Optuna search as `tensorboard --logdir <sweep dir>` shows it: runs named by trial and short
values, the objective as the first HParams column, only the task's metrics, and pruned trials
with their final metrics and the epochs they trained."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from litlab.files.run_record import RunRecord
from litlab.review.tensorboard import short_value, summary_metrics
from tests.helpers.config import QUICK
from tests.helpers.outputs import events, job_metrics, session_hparams
from tests.helpers.processes import run_in_process

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

REGRESSION = {"mse", "rmse", "mae", "r2"}


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> Path:
    """A 2-epoch trial, then a hopeless one (lr 1e-7) that the median pruner stops after epoch 0."""
    sweep = tmp_path_factory.mktemp("optuna") / "study"
    base = ["-m", "hparams_search=digits_mlp", *QUICK, "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}",
            "hydra.sweeper.pruner=median", "hydra.sweeper.pruner_args={n_startup_trials:1}"]  # fmt: skip
    for n_trials, lr in ((1, 0.05), (2, 1e-7)):
        code, _, err = run_in_process("train.py", *base, f"hydra.sweeper.n_trials={n_trials}",
                                      f"optimizer.lr=interval({lr}, {lr})")  # fmt: skip
        assert code == 0, err[-3000:]
    return sweep


def summary(sweep: Path) -> api_pb2.Experiment:
    """The experiment summary at the sweep root, its metrics in their order."""
    content = events(sweep).PluginTagToContent("hparams")
    return plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment


def test_values_in_names_have_three_significant_figures():
    assert short_value(0.0012345678, "0.0012345678") == "0.00123"
    assert short_value(123456.0, "123456.0") == "1.23e+05"
    assert short_value(0.05, "0.05") == "0.05" and short_value(1e-7, "1e-07") == "1e-07"
    assert short_value([64, 64], "[64,64]") == "[64, 64]" and short_value([0.123456], "[0.123456]") == "[0.123]"
    assert short_value(64, "64") == "64" and short_value("mlp", "mlp") == "mlp"


def test_a_grid_summary_puts_the_monitored_metric_first_and_keeps_test_metrics():
    job = RunRecord("completed", monitor="val/acc", val={"val/loss": 0.3, "val/acc": 0.9},
                    test={"test/loss": 0.4, "test/acc": 0.8})  # fmt: skip
    assert summary_metrics([job, job]) == ["val/acc", "val/loss", "test/loss", "test/acc"]
    pruned = replace(job, status="pruned", test={}, overrides=["optimizer.lr=0.1", "optuna.trial=1"])
    assert summary_metrics([job, pruned]) == ["val/acc", "epochs", "val/loss"]  # no column a pruned trial lacks


def test_optuna_runs_are_named_by_trial_and_rounded_values(search):
    import optuna

    study = optuna.load_study(study_name="digits_mlp", storage=f"sqlite:///{search}/optuna.db")
    runs = {Path(m["tensorboard"]).name: m for m in job_metrics(search).values()}
    assert len(runs) == len(study.trials) == 2
    for trial in study.trials:
        (name,) = [n for n in runs if n.split(",")[0] == f"trial_{trial.number}"]
        p = trial.params
        assert name == (
            f"trial_{trial.number},lr={p['optimizer.lr']:.3g},weight_decay={p['optimizer.weight_decay']:.3g},"
            f"dropout={p['model.dropout']:.3g},batch_size={p['data.batch_size']}"
        )
        assert f"{p['optimizer.weight_decay']}" not in name  # the sampled value has more digits


def test_the_summary_leads_with_the_objective_and_lists_only_the_tasks_metrics(search):
    metrics = [m.name.tag for m in summary(search).metric_infos]
    assert metrics[0] == "val/acc" and metrics[1] == "epochs"  # digits_mlp maximizes val/acc
    assert not {m for m in metrics if m.split("/")[-1] in REGRESSION}
    assert all(m.name.group == "best" for m in summary(search).metric_infos)


def test_a_pruned_trial_has_its_session_final_metrics_and_epochs(search):
    jobs = {m["status"]: m for m in job_metrics(search).values()}
    assert set(jobs) == {"completed", "pruned"}
    metrics = [m.name.tag for m in summary(search).metric_infos]
    for status, epochs in (("completed", 2), ("pruned", 1)):
        job = jobs[status]
        run = Path(job["tensorboard"])
        assert session_hparams(events(run))["optimizer.lr"] == job["hparams"]["optimizer.lr"]
        best = events(run / "best")
        last = {tag: best.Scalars(tag)[-1].value for tag in best.Tags()["scalars"]}
        # HParams' parallel coordinates draw a run only if it has every ticked column's value
        assert set(metrics) <= set(last)
        assert last["epochs"] == epochs == job["epochs"]
        assert last["val/acc"] == pytest.approx(job["val"]["val/acc"])
    assert jobs["pruned"]["pruned_at_epoch"] == 0


def test_the_summary_is_read_from_metrics_json(search):
    assert len(list(search.glob("events.out.tfevents.*"))) == 1  # the resumed study's replaced the first
    records = [RunRecord.from_json(json.loads(p.read_text())) for p in search.glob("*/metrics.json")]
    assert [m.name.tag for m in summary(search).metric_infos] == summary_metrics(records)


@pytest.mark.slow
def test_a_study_in_memory_names_its_runs_by_trial_too(tmp_path, cli):
    """hydra.sweeper.storage=null: no job can reach the study, but each job is told its trial's number."""
    sweep = tmp_path / "memory"
    search = ["-m", "hparams_search=digits_mlp", *QUICK, f"hydra.sweep.dir={sweep}", "hydra.sweeper.storage=null"]
    code, _, err = cli("train.py", *search, "hydra.sweeper.pruner=none", "hydra.sweeper.n_trials=2")
    assert code == 0, err[-3000:]
    names = sorted(Path(m["tensorboard"]).name for m in job_metrics(sweep).values())
    assert [n.split(",")[0] for n in names] == ["trial_0", "trial_1"] and all(",lr=" in n for n in names)
    assert [m.name.tag for m in summary(sweep).metric_infos][:2] == ["val/acc", "epochs"]

"""Runs that survive faults: kill -9 and resume, Ctrl-C and SIGTERM, checkpoints from a URL."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from litlab.checkpoints import store
from litlab.checkpoints.callbacks import BestCheckpoint
from litlab.errors import USER_ERROR_EXIT, UserError
from litlab.run.train import train
from tests.helpers.config import ROOT, SHRINK, compose_cfg
from tests.helpers.crafted import crafted_checkpoint

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop

# Dropout draws random numbers every step: a resume is exact only if the generators are restored.
RUN = ["model.dropout=0.3", "data.batch_size=16"]
# The signal ends these runs, not the epoch limit or early stopping, however late a busy machine sends it.
ENDLESS = ["trainer.max_epochs=1000", "~callbacks.early_stopping"]
POLL_S = 0.02


def start_training(run_dir: Path, *args: str) -> subprocess.Popen:
    """`python train.py` in the background, its output in <run_dir>.out (a pipe could fill up and block it)."""
    cmd = [sys.executable, str(ROOT / "train.py"), *SHRINK, *args, f"hydra.run.dir={run_dir}"]
    with open(run_dir.with_suffix(".out"), "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def output(run_dir: Path) -> str:
    return run_dir.with_suffix(".out").read_text()[-3000:]


def reached(proc: subprocess.Popen, run_dir: Path, epoch: int) -> bool:
    """Whether last.ckpt holds the end of `epoch` (0-based); fails if the run has ended."""
    if proc.poll() is not None:
        pytest.fail(f"{run_dir.name}: the run ended before epoch {epoch}:\n{output(run_dir)}")
    try:
        return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] >= epoch
    except (OSError, RuntimeError, EOFError):  # not written yet
        return False


def stop_training(run_dir: Path, sig: signal.Signals, after_epoch: int) -> tuple[int, str]:
    """Start `python train.py` (a new process spends ~10 s importing), send `sig` once last.ckpt
    holds the end of `after_epoch`, and return (exit code, output). Each test starts its own, so
    that `pytest -n 2` can run them side by side."""
    proc = start_training(run_dir, *RUN, *ENDLESS)
    deadline = time.monotonic() + 180
    try:
        while not reached(proc, run_dir, after_epoch):
            assert time.monotonic() < deadline, f"no checkpoint of epoch {after_epoch} within 180 s"
            time.sleep(POLL_S)
        proc.send_signal(sig)
        return proc.wait(timeout=60), output(run_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


def test_kill_9_and_resume_ends_as_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    code, _ = stop_training(killed, signal.SIGKILL, after_epoch=1)
    assert code == -signal.SIGKILL and not (killed / "metrics.json").exists()  # nothing ran after the kill
    epochs = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 2  # one more

    resumed = train(compose_cfg(tmp_path / "resumed", *RUN, f"trainer.max_epochs={epochs}", f"ckpt_path={killed}"))
    whole = train(compose_cfg(tmp_path / "whole", *RUN, f"trainer.max_epochs={epochs}"))
    assert resumed["resumed_from"] == str(killed / "checkpoints" / "last.ckpt")
    assert resumed["val"] == whole["val"] and resumed["test"] == whole["test"]  # exactly, on CPU
    assert resumed["epochs"] == whole["epochs"] == epochs
    assert Path(resumed["best_ckpt"]).name == Path(whole["best_ckpt"]).name
    assert Path(resumed["best_ckpt"]).parent == tmp_path / "resumed" / "checkpoints"


class SignalAt(L.Callback):
    """Sends SIGINT to this process in the middle of a training step (after the backward pass of
    batch `batch` of epoch `epoch`, before the optimizer steps), where a Ctrl-C mostly lands."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch, self.sent = epoch, batch, False

    def on_before_optimizer_step(self, trainer: L.Trainer, *args: object) -> None:
        here = (trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_idx)
        if here == (self.epoch, self.batch) and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def signal_at(epoch: int, batch: int) -> list[str]:
    """The overrides that add SignalAt to a run's callbacks."""
    return [f"+callbacks.signal._target_={SignalAt.__module__}.SignalAt", f"+callbacks.signal.epoch={epoch}",
            f"+callbacks.signal.batch={batch}"]  # fmt: skip


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_every_checkpoint_an_interrupted_run_names_resumes_to_the_uninterrupted_end(tmp_path, cli):
    """Ctrl-C in the middle of a step of epoch 1: interrupted.ckpt (the state at the end of that
    batch), last.ckpt (epoch 0), the best epoch_*.ckpt and the run dir each resume to exactly the
    metrics and weights of the same run left alone."""
    run = tmp_path / "logs" / "train" / "runs" / "interrupted"
    code, _, err = cli("train.py", *SHRINK, *RUN, "trainer.max_epochs=2", *signal_at(1, 5), f"hydra.run.dir={run}")
    assert code == 130, err[-3000:]
    record = json.loads((run / "metrics.json").read_text())
    state = torch.load(record["checkpoint"], weights_only=True)
    progress = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert state["epoch"] == 1 and progress["processed"] == 6  # batch 5 finished its step first
    whole = train(compose_cfg(tmp_path / "whole", *RUN, "trainer.max_epochs=2"))

    checkpoints = run / "checkpoints"
    named = {"interrupted.ckpt": record["checkpoint"], "last.ckpt": record["last_ckpt"],
             "best": str(next(checkpoints.glob("epoch_*.ckpt"))), "run dir": str(run)}  # fmt: skip
    assert store.resolve("latest", tmp_path / "logs") == store.resolve(str(run), tmp_path) == checkpoints / "last.ckpt"
    for i, (name, ckpt) in enumerate(named.items()):
        resumed = train(compose_cfg(tmp_path / f"resumed{i}", *RUN, "trainer.max_epochs=2", f"ckpt_path={ckpt}"))
        assert (resumed["val"], resumed["test"], resumed["epochs"]) == (whole["val"], whole["test"], 2), name
        weights, expected = last_weights(tmp_path / f"resumed{i}"), last_weights(tmp_path / "whole")
        assert all(torch.equal(weights[k], expected[k]) for k in expected), name


@pytest.mark.slow
def test_ctrl_c_in_the_last_step_resumes_with_more_epochs_to_the_uninterrupted_end(tmp_path, cli):
    """Ctrl-C in the last step of the last epoch is answered when training ends; resumed with one
    epoch more, the run trains all of that epoch's batches and ends as a run of 3 epochs left alone."""
    run = tmp_path / "interrupted"
    whole = train(compose_cfg(tmp_path / "whole", *RUN, "trainer.max_epochs=3"))
    steps = whole["steps"] // 3  # an epoch's
    code, _, err = cli("train.py", *SHRINK, *RUN, "trainer.max_epochs=2", *signal_at(1, steps - 1),
                       f"hydra.run.dir={run}")  # fmt: skip
    assert code == 130, err[-3000:]
    ckpt = json.loads((run / "metrics.json").read_text())["checkpoint"]
    resumed = train(compose_cfg(tmp_path / "resumed", *RUN, "trainer.max_epochs=3", f"ckpt_path={ckpt}"))
    assert resumed["steps"] == whole["steps"] == 3 * steps
    assert (resumed["val"], resumed["test"]) == (whole["val"], whole["test"])
    weights, expected = last_weights(tmp_path / "resumed"), last_weights(tmp_path / "whole")
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


# SIGINT is also sent in-process (test_every_checkpoint_...); the fast suite sends SIGTERM from outside.
@pytest.mark.parametrize(("name", "code"), [pytest.param("SIGINT", 130, marks=pytest.mark.slow), ("SIGTERM", 143)])
def test_an_interrupt_saves_the_state_and_says_so(tmp_path, name, code):
    run = tmp_path / name
    exit_code, out = stop_training(run, getattr(signal, name), after_epoch=0)
    assert exit_code == code, out
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == name
    done = record["epochs_completed"]
    assert done >= 1
    state = torch.load(record["checkpoint"], weights_only=True)  # the state when the signal came
    assert state["epoch"] == done and "optimizer_states" in state
    assert torch.load(record["last_ckpt"], weights_only=True)["epoch"] == done - 1  # the last whole epoch

    # The record's resume command: the run's own overrides, from its dir; it continues at the next epoch.
    command = shlex.split(record["resume"])
    assert command[:2] == ["litlab", "train"] and command[-1] == f"ckpt_path={run}"
    assert "model.dropout=0.3" in command and not any(a.startswith("hydra.") for a in command)
    more = train(compose_cfg(tmp_path / "more", *command[2:], f"trainer.max_epochs={done + 1}", shrink=False))
    assert more["epochs"] == done + 1 and more["resumed_from"] == record["last_ckpt"]


def test_last_ckpt_is_the_last_epoch_even_when_the_metric_did_not_improve(tmp_path):
    # the best checkpoint set by hand to mode max on a falling loss: the best is epoch 0, no later epoch improves
    metrics = train(compose_cfg(tmp_path, "trainer.max_epochs=3", "callbacks.model_checkpoint.mode=max"))
    assert Path(metrics["best_ckpt"]).name == "epoch_000.ckpt"
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    first = torch.load(metrics["best_ckpt"], weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 3 * first["global_step"]


def test_the_best_checkpoint_and_its_score_survive_a_resume_into_a_new_dir(tmp_path):
    old = tmp_path / "old" / "checkpoints"
    old.mkdir(parents=True)
    (old / "epoch_003.ckpt").write_bytes(b"weights of epoch 3")
    before = BestCheckpoint(dirpath=str(old), monitor="val/loss")
    before.best_model_path, before.best_model_score = str(old / "epoch_003.ckpt"), torch.tensor(0.25)
    before.best_k_models = {before.best_model_path: before.best_model_score}

    after = BestCheckpoint(dirpath=str(tmp_path / "new" / "checkpoints"), monitor="val/loss")
    after.load_state_dict(before.state_dict())
    copy = tmp_path / "new" / "checkpoints" / "epoch_003.ckpt"
    assert after.best_model_path == str(copy) and copy.read_bytes() == b"weights of epoch 3"
    assert float(after.best_model_score) == 0.25 and after.best_k_models == {str(copy): 0.25}


def test_latest_and_a_run_dir_name_the_newest_last_checkpoint(tmp_path):
    for name in ("2026-01-01", "2026-01-02"):
        folder = tmp_path / "train" / "runs" / name / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "last.ckpt").write_bytes(b"x")
        (folder / "epoch_001.ckpt").write_bytes(b"x")
        (folder / "epoch_000.ckpt").write_bytes(b"x")  # kept too (save_top_k=2): the record says which is best
        (folder.parent / "metrics.json").write_text(json.dumps({"best_ckpt": str(folder / "epoch_001.ckpt")}))
        time.sleep(0.01)  # distinct modification times
    newest = tmp_path / "train" / "runs" / "2026-01-02" / "checkpoints"
    assert store.resolve("latest", tmp_path) == newest / "last.ckpt"
    assert store.resolve("latest", tmp_path, prefer="best") == newest / "epoch_001.ckpt"
    assert store.resolve(str(newest.parent), tmp_path) == newest / "last.ckpt"
    assert store.resolve(str(newest.parent), tmp_path, prefer="best") == newest / "epoch_001.ckpt"
    with pytest.raises(UserError, match="ckpt_path=latest: no run with checkpoints/last.ckpt"):
        store.resolve("latest", tmp_path / "elsewhere")


def test_a_checkpoint_url_is_downloaded_and_loaded_safely(cli, web, tmp_path):
    www, url = web
    marker = tmp_path / "marker"
    crafted_checkpoint(www / "evil.ckpt", marker)
    logs = f"paths.log_dir={tmp_path / 'logs'}"
    for script, extra in (("train.py", ["trainer=cpu"]), ("evaluate.py", []), ("predict.py", ["input=x.csv"])):
        code, _, err = cli(script, f"ckpt_path={url}/evil.ckpt", logs, *extra)
        assert code == USER_ERROR_EXIT and "was refused" in err and "weights_only=True" in err, (script, err)
        assert not marker.exists(), f"{script} ran code from the downloaded checkpoint"

    # A real checkpoint from the same server works.
    best = train(compose_cfg(tmp_path / "trained", "trainer.max_epochs=1"))["best_ckpt"]
    (www / "good.ckpt").write_bytes(Path(best).read_bytes())
    code, _, err = cli(
        "evaluate.py", f"ckpt_path={url}/good.ckpt", logs, "trainer=cpu", "hydra.run.dir=" + str(tmp_path / "ev")
    )
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["test"]["test/acc"] > 0.5


@pytest.mark.slow
def test_a_run_interrupted_in_its_first_epoch_records_the_command_that_resumes_it(tmp_path, cli):
    """No last.ckpt yet: the record's resume command names the run dir, which resumes from its
    interrupted.ckpt to the uninterrupted end."""
    run = tmp_path / "interrupted"
    code, _, err = cli("train.py", *SHRINK, *RUN, "trainer.max_epochs=2", *signal_at(0, 3), f"hydra.run.dir={run}")
    assert code == 130, err[-3000:]
    record = json.loads((run / "metrics.json").read_text())
    assert record["last_ckpt"] is None and record["resume"].endswith(f"ckpt_path={run}")
    whole = train(compose_cfg(tmp_path / "whole", *RUN, "trainer.max_epochs=2"))
    resumed = train(compose_cfg(tmp_path / "resumed", *RUN, "trainer.max_epochs=2", f"ckpt_path={run}"))
    assert resumed["resumed_from"] == record["checkpoint"]
    assert (resumed["val"], resumed["test"], resumed["epochs"]) == (whole["val"], whole["test"], 2)

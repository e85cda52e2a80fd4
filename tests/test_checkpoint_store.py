"""The best checkpoint is the one the run recorded (metrics.json's best_ckpt), whatever else its
checkpoints dir holds and wherever the best checkpoint stands in the callbacks config."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from sklearn import datasets

from litlab.checkpoints import store
from litlab.checkpoints.callbacks import BestCheckpoint
from litlab.checkpoints.resume import check_resumable, requeued_checkpoint
from litlab.errors import UserError
from litlab.files.run_record import RunRecord
from litlab.inference.checkpoint import predict
from litlab.models.mlp import MLP
from litlab.run.evaluate import evaluate
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.crafted import crafted_checkpoint

# Three epoch checkpoints kept, of a run whose val/loss is lowest before its last epoch: Adam at lr 0.03
# for four epochs, then StepLR multiplies the learning rate by 5 and val/loss rises (seed 42). The newest
# epoch_*.ckpt is then not the best: only the run's record says which one is.
TOP_K = ["callbacks.model_checkpoint.save_top_k=3", "trainer.max_epochs=6", "callbacks.early_stopping.patience=100",
         "model=mlp", "model.hidden_sizes=[32]", "optimizer.lr=0.03", "scheduler=step", "scheduler.step_size=4",
         "scheduler.gamma=5", "++trainer.limit_train_batches=2", "++trainer.limit_val_batches=1",
         "~callbacks.test_figures"]  # fmt: skip


def evaluate_run(run_dir: Path, out: Path) -> dict:
    cfg = compose_cfg(out, f"ckpt_path={run_dir}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    return evaluate(cfg)


def test_with_save_top_k_3_evaluate_and_predict_use_the_recorded_best(tmp_path):
    run = tmp_path / "run"
    metrics = train(compose_cfg(run, *TOP_K))
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch_*.ckpt"))
    best = Path(metrics["best_ckpt"])
    # three epoch checkpoints, the best not the newest: neither a glob nor the latest epoch finds it
    assert len(kept) == 3 and best.name in kept and best.name != kept[-1]
    assert store.resolve(str(run), tmp_path, prefer="best") == best
    assert store.resolve(str(run / "checkpoints"), tmp_path, prefer="best") == best
    assert store.resolve(str(run), tmp_path) == run / "checkpoints" / store.LAST  # resume takes the last

    evaluated = evaluate_run(run, tmp_path / "eval")
    assert evaluated["ckpt_path"] == str(best)
    assert evaluated["test"]["test/acc"] == metrics["test"]["test/acc"]  # the best's test score, not the last's

    np.save(tmp_path / "new.npy", datasets.load_digits().images[:5].reshape(5, 1, 8, 8))  # (N, C, H, W)
    from_dir = predict(str(run), str(tmp_path / "new.npy"), str(tmp_path / "from_dir.csv"))
    from_best = predict(str(best), str(tmp_path / "new.npy"), str(tmp_path / "from_best.csv"))
    pd.testing.assert_frame_equal(from_dir, from_best)


def test_the_best_checkpoint_does_not_depend_on_the_callbacks_order(tmp_path):
    """Lightning's trainer.checkpoint_callback is the first ModelCheckpoint: with last.ckpt's callback
    first it would be last.ckpt. litlab finds the one that watches the monitored metric."""
    cfg = compose_cfg(tmp_path, "trainer.max_epochs=2")
    callbacks = OmegaConf.to_container(cfg.callbacks)
    assert isinstance(callbacks, dict)
    reordered = {"last_checkpoint": callbacks.pop("last_checkpoint"), **callbacks}
    with open_dict(cfg):
        cfg.callbacks = OmegaConf.create(reordered)
        cfg.callbacks.model_checkpoint.dirpath = str(tmp_path / "checkpoints")
        cfg.callbacks.last_checkpoint.dirpath = str(tmp_path / "checkpoints")
    assert next(iter(cfg.callbacks)) == "last_checkpoint"
    metrics = train(cfg)
    assert Path(metrics["best_ckpt"]).name.startswith("epoch_")
    assert json.loads((tmp_path / "metrics.json").read_text())["best_ckpt"] == metrics["best_ckpt"]


def test_a_run_without_a_recorded_best_uses_its_last_checkpoint(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"x")
    (folder / "epoch_003.ckpt").write_bytes(b"x")  # no metrics.json: an interrupted run
    assert store.resolve(str(tmp_path / "run"), tmp_path, prefer="best") == folder / "last.ckpt"


def test_a_folder_holding_its_record_beside_its_checkpoints_gives_the_recorded_best(tmp_path):
    """A run's files copied flat into one folder (no checkpoints/ in it): the record there names the best."""
    flat = tmp_path / "copied"
    flat.mkdir()
    for name in ("last.ckpt", "epoch_001.ckpt", "epoch_002.ckpt"):
        (flat / name).write_bytes(b"x")
    RunRecord("completed", best_ckpt="/elsewhere/run/checkpoints/epoch_001.ckpt").write(flat)
    assert store.resolve(str(flat), tmp_path, prefer="best") == flat / "epoch_001.ckpt"


def test_a_run_interrupted_in_its_first_epoch_resumes_from_its_interrupted_checkpoint(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "interrupted.ckpt").write_bytes(b"x")  # no epoch ended: no last.ckpt
    assert store.resolve(str(tmp_path / "run"), tmp_path) == folder / "interrupted.ckpt"
    (folder / "last.ckpt").write_bytes(b"x")
    assert store.resolve(str(tmp_path / "run"), tmp_path) == folder / "last.ckpt"  # as the record's command says


class Pickled:
    """An object a checkpoint could only hold pickled, i.e. code run when it is loaded."""


def test_the_trainers_checkpoint_io_never_unpickles(tmp_path):
    """Lightning's own restores (the range test putting the model back) ask for weights_only=False;
    the CheckpointIO every litlab Trainer gets loads with weights_only=True all the same."""
    import pickle

    import torch

    from litlab.checkpoints.io import WholeCheckpointIO

    path = tmp_path / "x.ckpt"
    io = WholeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert io.load_checkpoint(path, weights_only=False)["epoch"] == 3
    torch.save({"object": Pickled()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        io.load_checkpoint(path, weights_only=False)


def test_an_unreadable_checkpoint_is_one_error_that_says_what_was_met(tmp_path):
    """A pickle that names code to run is refused as such, naming what it would call; bytes that
    are no checkpoint say what the unpickler met; an empty file says so; nothing else is loaded."""
    marker = tmp_path / "made"
    with pytest.raises(UserError, match=r"ckpt_path='.*evil.ckpt' was refused: .* can run code \(.*GLOBAL posix.mkdir"):
        store.load(crafted_checkpoint(tmp_path / "evil.ckpt", marker))
    assert not marker.exists()
    (tmp_path / "noise.ckpt").write_bytes(b"_" * 64)
    with pytest.raises(UserError, match=r"'.*noise.ckpt' is not a readable PyTorch checkpoint \(Unsupported operand"):
        store.load(tmp_path / "noise.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")  # EOFError, without a message: its name then
    with pytest.raises(UserError, match=r"^input='.*empty.ckpt' is not a readable PyTorch checkpoint \(EOFError\)"):
        store.load(tmp_path / "empty.ckpt", key="input")
    torch.save({"epoch": 1}, tmp_path / "whole.ckpt")
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "whole.ckpt").read_bytes()[:200])  # its first line then
    with pytest.raises(UserError, match=r"cut.ckpt' is not a readable PyTorch checkpoint \(PytorchStreamReader failed"):
        store.load(tmp_path / "cut.ckpt")


def test_a_checkpoint_names_only_litlab_s_own_classes_of_the_right_kind(tmp_path, monkeypatch):
    """The classes a checkpoint records are imported only from litlab, and only a subclass of what
    is asked for is returned: naming another module's class imports nothing."""
    from litlab.data.base import SplitDataModule
    from litlab.data.torchvision_sets import MNISTDataModule
    from litlab.models.base import SupervisedModule

    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\nclass Net: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="its model_class 'planted.Net' is not a litlab SupervisedModule"):
        store.recorded_class({"model_class": "planted.Net"}, "model_class", SupervisedModule)
    assert not (tmp_path / "imported").exists()
    with pytest.raises(UserError, match="'litlab.data.csv.CSVDataModule' is not a litlab SupervisedModule"):
        store.recorded_class({"model_class": "litlab.data.csv.CSVDataModule"}, "model_class", SupervisedModule)
    with pytest.raises(UserError, match="its model_class '' is not"):
        store.recorded_class({}, "model_class", SupervisedModule)
    # a class recorded under the module it had before it moved is found where it is now
    moved = store.recorded_class({"dm": "litlab.data.images.MNISTDataModule"}, "dm", SplitDataModule)
    assert moved is MNISTDataModule


@pytest.mark.parametrize(
    "content",
    [[1, 2, 3], {"state_dict": {}}, {"litlab": {"model_class": "litlab.models.mlp.MLP", "datamodule_class": None}}],
    ids=["a-list", "no-litlab-entry", "no-datamodule-class"],
)
def test_a_checkpoint_without_litlab_s_entry_is_refused_in_one_line(tmp_path, content):
    torch.save(content, tmp_path / "other.ckpt")
    with pytest.raises(UserError, match=r"other.ckpt' was not written by litlab's train.py \(it has no 'litlab' entry"):
        store.checkpoint_classes(tmp_path / "other.ckpt")


def test_a_requeued_slurm_job_resumes_its_interrupted_attempt_and_keeps_that_record(tmp_path, monkeypatch):
    """The same command run again by SLURM in the same dir: its last.ckpt when the attempt before was
    interrupted (its record set aside as metrics_before_restart_N.json, read again by later ranks);
    nothing when that attempt ended otherwise, or when this is no restart."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 1}, run / "checkpoints" / "last.ckpt")
    RunRecord("interrupted").write(run)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeued_checkpoint(run) is None  # the first attempt
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert requeued_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    assert not RunRecord.exists(run) and RunRecord.load(run / "metrics_before_restart_2.json").status == "interrupted"
    assert requeued_checkpoint(run) == run / "checkpoints" / "last.ckpt"  # another rank, after rank 0 moved it
    RunRecord("failed", error="x").write(run)
    (run / "metrics_before_restart_2.json").unlink()
    assert requeued_checkpoint(run) is None  # it failed: started again, not resumed


def test_resuming_checks_the_training_state_the_weights_names_shapes_and_finiteness(tmp_path):
    """Before a resumed run trains: a checkpoint of the same network continues; one without the loops'
    state, with another network's weights (a missing name, another shape) or with NaN weights is
    refused, naming the first weight at fault. Integer buffers (BatchNorm's count) are no weights."""
    model = MLP((1, 8, 8), hidden_sizes=[16], batch_norm=True, task="multiclass", num_outputs=10)

    def saved(name: str, state: dict, loops: bool = True) -> Path:
        torch.save({"state_dict": state, **({"loops": {}} if loops else {})}, tmp_path / name)
        return tmp_path / name

    weights = model.state_dict()
    assert any(not v.is_floating_point() for v in weights.values())  # BatchNorm's num_batches_tracked
    check_resumable(saved("same.ckpt", weights), model)
    with pytest.raises(UserError, match="no training state to resume"):
        check_resumable(saved("no_loops.ckpt", weights, loops=False), model)
    torch.save({"loops": {}}, tmp_path / "no_weights.ckpt")
    torch.save(list(weights.values()), tmp_path / "a_list.ckpt")  # a readable file of another kind
    for name in ("no_weights.ckpt", "a_list.ckpt"):
        with pytest.raises(UserError, match="no training state to resume"):
            check_resumable(tmp_path / name, model)
    first = next(iter(weights))
    with pytest.raises(UserError, match=rf"different model \({first} does not match"):
        check_resumable(saved("missing.ckpt", {k: v for k, v in weights.items() if k != first}), model)
    wider = MLP((1, 8, 8), hidden_sizes=[17], batch_norm=True, task="multiclass", num_outputs=10)
    with pytest.raises(UserError, match=rf"different model \({first} does not match"):
        check_resumable(saved("wider.ckpt", wider.state_dict()), model)
    last = [k for k, v in weights.items() if v.is_floating_point()][-1]
    nan = {k: v.clone() for k, v in weights.items()}
    nan[last][0] = float("nan")
    with pytest.raises(UserError, match=rf"non-finite weights \({last} has NaN"):
        check_resumable(saved("nan.ckpt", nan), model)


def test_latest_is_the_run_or_sweep_job_whose_last_checkpoint_was_written_last(tmp_path):
    names = ("hparams_search/digits_mlp/4", "runs/a", "runs/b", "multiruns/2026-12-05/3")  # oldest last
    runs = {name: tmp_path / "logs" / "train" / name for name in names}
    for age, run in enumerate(reversed(runs.values())):
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
        os.utime(run / "checkpoints" / "last.ckpt", (1e9 - age * 100, 1e9 - age * 100))  # the sweep job newest
    assert store.latest_run(tmp_path / "logs") == runs["multiruns/2026-12-05/3"]
    os.utime(runs["runs/b"] / "checkpoints" / "last.ckpt", (2e9, 2e9))
    assert store.latest_run(tmp_path / "logs") == runs["runs/b"]
    assert store.resolve("latest", tmp_path / "logs") == runs["runs/b"] / "checkpoints" / "last.ckpt"
    os.utime(runs["hparams_search/digits_mlp/4"] / "checkpoints" / "last.ckpt", (3e9, 3e9))  # an Optuna trial's
    assert store.latest_run(tmp_path / "logs") == runs["hparams_search/digits_mlp/4"]
    with pytest.raises(
        UserError, match=rf"^ckpt_path=latest: no run with checkpoints/last.ckpt under paths.log_dir='{tmp_path}'"
    ):
        store.latest_run(tmp_path)


def test_a_url_is_fetched_anew_into_torch_s_hub_cache_and_a_failed_fetch_leaves_nothing(web, tmp_path):
    www, url = web
    (www / "run.ckpt").write_bytes(b"first")
    cached = store.download(f"{url}/run.ckpt?v=1")
    assert cached.parent == tmp_path / "torch_home" / "hub" / "checkpoints" and cached.name.endswith("-run.ckpt")
    assert cached.read_bytes() == b"first"
    (www / "run.ckpt").write_bytes(b"second")
    assert store.download(f"{url}/run.ckpt?v=1") == cached and cached.read_bytes() == b"second"
    assert store.download(f"{url}/run.ckpt?v=2") != cached  # another URL, another file
    (www / "index.html").write_bytes(b"page")
    assert store.download(f"{url}/").name.endswith("-checkpoint.ckpt")
    with pytest.raises(UserError, match=rf"^ckpt_path='{url}/gone.ckpt' could not be downloaded \(HTTP Error 404"):
        store.download(f"{url}/gone.ckpt")
    names = sorted(p.name.split("-", 1)[1] for p in cached.parent.iterdir())
    assert names == ["checkpoint.ckpt", "run.ckpt", "run.ckpt"]  # no .part file left


def test_a_url_that_never_answers_is_one_line_after_the_download_timeout(tmp_path, monkeypatch):
    """A server that accepts the connection and then says nothing must not hold a run forever."""
    import socket

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(store, "DOWNLOAD_TIMEOUT_S", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens; the kernel accepts; nobody answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/run.ckpt"
        with pytest.raises(UserError, match=rf"^ckpt_path='{url}' could not be downloaded \(.*timed out"):
            store.download(url)
    assert not list((tmp_path / "torch_home").rglob("*.part"))


def test_a_url_of_another_scheme_is_refused_by_name_not_looked_for_as_a_file(tmp_path):
    with pytest.raises(UserError, match=r"^ckpt_path='s3://bucket/run.ckpt': only local paths and http\(s\) URLs"):
        store.resolve("s3://bucket/run.ckpt", tmp_path)


def test_a_resume_into_a_new_dir_copies_the_best_checkpoint_there_with_its_score(tmp_path):
    old, new = tmp_path / "old" / "checkpoints", tmp_path / "new" / "checkpoints"
    old.mkdir(parents=True)
    (old / "epoch_003.ckpt").write_bytes(b"best")
    before = BestCheckpoint(dirpath=str(old), monitor="val/acc", mode="max")
    before.best_model_path, before.best_model_score = str(old / "epoch_003.ckpt"), torch.tensor(0.9)
    before.best_tie_breaker = 0.2
    new.mkdir(parents=True)  # already made by the resumed run
    resumed = BestCheckpoint(dirpath=str(new), monitor="val/acc", mode="max")
    resumed.load_state_dict(before.state_dict())
    assert resumed.best_model_path == str(new / "epoch_003.ckpt") and (new / "epoch_003.ckpt").read_bytes() == b"best"
    assert (float(resumed.best_model_score), resumed.best_tie_breaker) == (pytest.approx(0.9), 0.2)
    (old / "epoch_003.ckpt").unlink()  # the old run's dir emptied: the best is chosen among the new epochs
    gone = BestCheckpoint(dirpath=str(tmp_path / "newer"), monitor="val/acc", mode="max")
    gone.load_state_dict(before.state_dict())
    assert (gone.best_model_path, gone.best_tie_breaker) == ("", None) and not (tmp_path / "newer").exists()


def test_without_litlab_s_checkpoint_callbacks_a_run_tests_and_records_lightning_s_own_checkpoint(tmp_path):
    """callbacks=none: Lightning's default checkpoint (the latest epoch, watching no metric) is the
    one tested and recorded, not none at all."""
    train(compose_cfg(tmp_path, "callbacks=none", "trainer.max_epochs=2"))
    record = RunRecord.read(tmp_path)
    assert record.best_ckpt is not None and Path(record.best_ckpt).is_file()
    assert Path(record.best_ckpt).name.startswith("epoch=1-step=")  # Lightning's own name: the last epoch's


@pytest.mark.parametrize(("done", "max_epochs", "says"), [(4, 4, True), (4, 5, False), (4, -1, False), (0, 0, True),
                                                          (4, None, False)])  # fmt: skip
def test_resuming_a_checkpoint_that_has_every_epoch_says_nothing_is_left_to_train(tmp_path, caplog, done, max_epochs,
                                                                                   says):  # fmt: skip
    """-1 is Lightning's "no limit"; the epochs a checkpoint has are those its fit loop processed."""
    model = MLP((1, 8, 8), hidden_sizes=[16], task="multiclass", num_outputs=10)
    loops = {"fit_loop": {"epoch_progress": {"current": {"processed": done, "completed": done - 1}}}}
    torch.save({"state_dict": model.state_dict(), "loops": loops}, tmp_path / "run.ckpt")
    with caplog.at_level(logging.WARNING, logger="litlab.checkpoints.resume"):
        check_resumable(tmp_path / "run.ckpt", model, max_epochs)
    said = f"has {done} of trainer.max_epochs={max_epochs} epochs: nothing left to train" in caplog.text
    assert said == says and (not says or f"give trainer.max_epochs={done + 1} or more" in caplog.text)

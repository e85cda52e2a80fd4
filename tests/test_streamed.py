"""data.in_memory=false: pictures streamed from their files by DataLoader workers give the in-memory
path's batches, shard under DDP as DistributedSampler does, and resume mid-epoch after kill -9."""

import gc
import json
import math
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import open_dict
from torch.utils.data import DistributedSampler

from litlab.data import ImageFolderDataModule
from litlab.data.check import data_report
from litlab.data.streamed import DecodedImages, FileBatches
from litlab.errors import UserError
from litlab.inference.checkpoint import predict
from litlab.run.evaluate import evaluate
from litlab.run.train import train
from tests.helpers.config import ROOT, SHRINK, compose_cfg
from tests.helpers.data_files import write_image_folder
from tests.helpers.processes import run_script

pytestmark = pytest.mark.e2e  # trained runs, exports, servers or whole commands: out of the inner loop


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("pictures") / "digits")


def both(folder, **settings) -> tuple[ImageFolderDataModule, ImageFolderDataModule]:
    held = ImageFolderDataModule(path=str(folder), in_memory=True, **settings)
    streamed = ImageFolderDataModule(path=str(folder), in_memory=False, num_workers=2, **settings)
    assert not held.streamed and streamed.streamed
    return held, streamed


def test_the_streamed_path_gives_the_in_memory_paths_batches(folder):
    held, streamed = both(folder, seed=3, batch_size=100)
    assert streamed.spec == held.spec  # the same description of the data
    torch.testing.assert_close(streamed.scaler.shift, held.scaler.shift)  # fitted to the same pixels
    torch.testing.assert_close(streamed.scaler.scale, held.scaler.scale)
    for name in ("train", "val", "test"):
        a = held.train_dataloader() if name == "train" else getattr(held, f"{name}_dataloader")()
        b = streamed.train_dataloader() if name == "train" else getattr(streamed, f"{name}_dataloader")()
        assert len(a) == len(b)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(ya, yb)
            torch.testing.assert_close(xb, xa)
    report_a, report_b = data_report(held), data_report(streamed)
    assert report_b["rows"] == report_a["rows"] and report_b["per_class"] == report_a["per_class"]


def test_in_memory_auto_follows_the_memory_budget(folder, caplog):
    with caplog.at_level("INFO"):
        assert not ImageFolderDataModule(path=str(folder)).streamed  # 1797 8x8 images: 0.1 MB
        assert ImageFolderDataModule(path=str(folder), memory_budget_gb=1e-5).streamed  # 10 kB
    assert "held in memory (data.in_memory=auto)" in caplog.text
    assert "streamed from the files by" in caplog.text and "budget 0.0 GB" in caplog.text
    for key, value, valid in (("in_memory", "maybe", "valid: auto"), ("memory_budget_gb", 0, "size in GB > 0"),
                              ("num_workers", -1, "give 0")):  # fmt: skip
        with pytest.raises(UserError, match=f"data.{key}={value!r}.*{valid}".replace("'", "'?")):
            ImageFolderDataModule(path=str(folder), **{key: value})


@pytest.mark.parametrize("shuffle", [True, False])
def test_ddp_ranks_take_the_shards_distributed_sampler_gives(folder, shuffle):
    files = sorted(folder.rglob("*.png"))[:51]
    labels = torch.arange(51)  # the label is the index: the batches show the order
    dataset = DecodedImages(files, labels, 1, (8, 8))
    for epoch in (0, 3):
        shards = []
        for rank in (0, 1):
            batches = FileBatches(dataset, 8, shuffle, None, torch.device("cpu"), num_workers=0, seed=7,
                                  epoch=lambda e=epoch: e, rank=rank, world_size=2)  # fmt: skip
            ours = torch.cat([yb for _, yb in batches]).tolist()
            sampler = DistributedSampler(range(51), num_replicas=2, rank=rank, shuffle=shuffle, seed=7)
            sampler.set_epoch(epoch)
            assert ours == list(sampler) and len(batches) == -(-len(ours) // 8)
            shards.append(ours)
        assert set(shards[0]) | set(shards[1]) == set(range(51))


def test_workers_of_batches_dropped_in_a_cycle_end_at_once(folder):
    """A Trainer holds the loaders in reference cycles, which the collector frees together. The
    workers must answer the shutdown then, not wait out the DataLoader's 5 s timeout each."""
    files = sorted(folder.rglob("*.png"))[:64]
    batches = FileBatches(DecodedImages(files, torch.arange(64), 1, (8, 8)), 8, True, None, torch.device("cpu"),
                          num_workers=2, seed=0, epoch=lambda: 0, rank=0, world_size=1)  # fmt: skip
    batches.cycle = batches  # type: ignore[attr-defined]
    next(iter(batches))  # workers started, the pass left half-read as Lightning's sanity check leaves it
    del batches
    start = time.monotonic()
    gc.collect()
    assert time.monotonic() - start < 2.5  # each of 2 workers would take 5 s to time out


def streamed_run(folder, tmp_path) -> list[str]:
    return ["model=cnn", "data=image_folder", f"data.path={folder}", "data.in_memory=false", "data.num_workers=1",
            f"data.cache_dir={tmp_path / 'cache'}", "trainer.max_epochs=3"]  # fmt: skip


@pytest.mark.slow
def test_a_streamed_run_trains_evaluates_and_predicts_as_an_in_memory_one(folder, tmp_path):
    streamed = train(compose_cfg(tmp_path / "streamed", *streamed_run(folder, tmp_path)))
    held = train(compose_cfg(tmp_path / "held", *streamed_run(folder, tmp_path), "data.in_memory=true"))
    assert streamed["test"]["test/acc"] >= 0.9
    assert streamed["test"] == pytest.approx(held["test"], abs=1e-4)  # same batches, same seed: same model

    cfg = compose_cfg(tmp_path / "eval", f"ckpt_path={tmp_path / 'streamed'}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    assert evaluate(cfg)["test"]["test/acc"] == pytest.approx(streamed["test"]["test/acc"])
    frame = predict(str(tmp_path / "streamed"), str(folder / "seven"), str(tmp_path / "predictions.csv"))
    assert (frame["pred_label"] == "seven").mean() >= 0.9


@pytest.mark.slow  # two training processes and a resumed one: ~35 s of the fast suite's budget
def test_kill_9_mid_epoch_and_resume_on_the_streamed_path_ends_as_an_uninterrupted_run(folder, tmp_path):
    """20 batches an epoch; a checkpoint every 30 steps, the first 10 batches into epoch 1. The run is
    killed once it is written, and resumed from it into a new dir."""
    mid = tmp_path / "mid"
    run, killed = streamed_run(folder, tmp_path), tmp_path / "killed"
    save = ["+callbacks.mid._target_=lightning.pytorch.callbacks.ModelCheckpoint", f"+callbacks.mid.dirpath={mid}",
            "+callbacks.mid.every_n_train_steps=30", "+callbacks.mid.save_top_k=-1"]  # fmt: skip
    cmd = [sys.executable, str(ROOT / "train.py"), *SHRINK, *run, *save, f"hydra.run.dir={killed}"]
    with open(tmp_path / "killed.out", "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        while not list(mid.glob("*step=30*.ckpt")):
            assert proc.poll() is None, (tmp_path / "killed.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "no mid-epoch checkpoint within 180 s"
            time.sleep(0.02)
        time.sleep(0.2)  # written whole: ModelCheckpoint saves to a temporary name, then renames
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL and not (killed / "metrics.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    ckpt = tmp_path / "step30.ckpt"  # a name without '=', which a Hydra override cannot hold
    shutil.copy(next(mid.glob("*step=30*.ckpt")), ckpt)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # mid-epoch
    whole = train(compose_cfg(tmp_path / "whole", *run))
    resumed = train(compose_cfg(tmp_path / "resumed", *run, f"ckpt_path={ckpt}"))
    assert resumed["resumed_from"] == str(ckpt) and resumed["steps"] == whole["steps"]
    weights = [torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for r in ("whole", "resumed")]  # fmt: skip
    for key in weights[0]:
        torch.testing.assert_close(weights[1][key], weights[0][key], rtol=1e-5, atol=1e-6, msg=key)
    assert resumed["test"] == pytest.approx(whole["test"], rel=1e-4, abs=1e-5)


@pytest.mark.slow  # two Lightning processes, each with a DataLoader worker
def test_ddp_on_two_cpu_ranks_streams_each_rank_its_shard(folder, tmp_path):
    run_dir = tmp_path / "run"
    shrink = [o for o in SHRINK if not o.startswith("trainer=")]
    proc = run_script("train.py", *shrink, *streamed_run(folder, tmp_path), "trainer=ddp", "trainer.devices=2",
                      "trainer.accelerator=cpu", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert "all_gather_into_tensor" not in proc.stderr  # torch's deprecation, raised inside Lightning's gathers
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train_rows, batch = 1257, 64  # 70% of the 1797 digits, the default batch size
    assert metrics["world_size"] == 2 and metrics["steps"] == 3 * math.ceil(math.ceil(train_rows / 2) / batch)
    assert metrics["test"]["test/acc"] >= 0.9
    assert (run_dir / "train_ddp_process_1.log").exists()  # a second rank really ran

"""Precision, torch.compile, channels_last and DDP on CPU: each runs and gives a working model."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train
from tests.helpers.config import ROOT
from tests.helpers.processes import free_port, run_script, started
from tests.helpers.spies import ForwardDtypes, spy_on


@pytest.mark.e2e
def test_bf16_mixed_precision_trains_on_cpu(make_cfg, monkeypatch):
    used = ForwardDtypes()
    spy_on(monkeypatch, used)
    metrics = train(make_cfg("trainer.precision=bf16-mixed", "trainer.max_epochs=3", "callbacks=none"))
    assert used.dtypes == {torch.bfloat16}  # the Linear layers computed in bf16 while training
    assert metrics["test"]["test/acc"] > 0.8


def test_channels_last_gives_the_same_outputs(make_cfg):
    cfg = make_cfg("model=cnn")
    dm = build_datamodule(cfg)
    plain = build_model(cfg, dm).eval()
    cfg.model.channels_last = True
    nhwc = build_model(cfg, dm).eval()
    nhwc.load_state_dict(plain.state_dict())
    x, _ = next(iter(dm.val_dataloader()))
    assert next(nhwc.net.parameters()).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.e2e
@pytest.mark.slow
def test_compiled_model_trains_and_its_checkpoint_loads_uncompiled(make_cfg, tmp_path):
    metrics = train(make_cfg("model.compile=true", "trainer.max_epochs=3"))
    assert metrics["test"]["test/acc"] > 0.8
    state = torch.load(metrics["best_ckpt"], weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in state)  # Module.compile() keeps the parameter names


@pytest.mark.e2e
@pytest.mark.slow  # two Lightning processes; CI's 2-rank DDP run is tests/test_slurm.py (DDP through srun)
def test_ddp_on_cpu_with_two_processes(tmp_path):
    """`litlab train` from any dir: Lightning starts the second rank as `litlab ARGS` without the
    verb, which it still runs; each warning is printed once for the run, not once per rank."""
    run_dir = tmp_path / "run"
    litlab = str(Path(sys.executable).with_name("litlab"))
    args = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false", "extras.print_config=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = subprocess.run([litlab, "train", *args], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warned = [line for line in proc.stderr.splitlines() if "Warning" in line or "deprecated" in line]
    assert len(warned) == len(set(warned)), warned
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["test/acc"] > 0.8
    assert (run_dir / "train_ddp_process_1.log").exists()  # a second rank really ran
    # One test stage on the best checkpoint, one TensorBoard run, one checkpoint dir.
    assert metrics["best_ckpt"].startswith(str(run_dir / "checkpoints"))
    runs = {f.parent for f in run_dir.glob("*/events.out.tfevents.*")}
    assert runs == {run_dir / "trainer=ddp,trainer.max_epochs=3"}  # named by the overrides that set something


@pytest.mark.e2e
@pytest.mark.slow  # two torchrun agents and their two workers, each importing Lightning
def test_two_nodes_with_torchrun_on_localhost(tmp_path, cli):
    """Multi-node DDP as on two machines: one `torchrun --nnodes=2 --node-rank=R` per "node",
    rendezvous on 127.0.0.1. Each rank trains on its half (half the steps of one process), the
    test metrics are synced (equal to testing the checkpoint in one process), and only rank 0
    writes metrics.json."""
    run_dir, port = tmp_path / "run", free_port()
    args = ["trainer=ddp", "trainer.num_nodes=2", "trainer.devices=1", "trainer.accelerator=cpu",
            "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "extras.print_config=false", "logger=none",
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    node_cmds = [
            [
                "torchrun",
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                str(ROOT / "train.py"),
                *args,
            ]  # fmt: skip
        for rank in (0, 1)
    ]
    with started(*node_cmds, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as nodes:
        outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]
    assert list(tmp_path.rglob("metrics.json")) == [run_dir / "metrics.json"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train_rows, batch = 1257, 64  # digits: 70% of 1797 rows, the default batch size
    assert metrics["world_size"] == 2 and metrics["steps"] == 2 * math.ceil(train_rows / 2 / batch)
    code, _, err = cli(
        "evaluate.py", f"ckpt_path={metrics['best_ckpt']}", "trainer=cpu", f"hydra.run.dir={tmp_path / 'ev'}"
    )
    assert code == 0, err[-3000:]
    single = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert single["test"]["test/acc"] == pytest.approx(metrics["test"]["test/acc"])


@pytest.mark.e2e
@pytest.mark.slow  # three DDP runs of two Lightning processes each
def test_ddp_with_steps_per_call_trains_as_one_step_per_call(tmp_path):
    """Every one of the K steps syncs the gradients across ranks (a rank stepping on its own
    gradients would end elsewhere), each rank still trains on its own shard, and under `auto`
    all ranks take rank 0's K (ranks taking different K would hang in their collectives)."""
    metrics = {}
    for k in (1, 4, "auto"):
        run_dir = tmp_path / f"k{k}"
        run_script("train.py", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=3",
                   "trainer.enable_progress_bar=false", "extras.print_config=false", "logger=none",
                   f"model.steps_per_call={k}", f"hydra.run.dir={run_dir}")  # fmt: skip
        metrics[k] = json.loads((run_dir / "metrics.json").read_text())
    train_rows, batch = 1257, 64  # digits: 70% of 1797 rows, the default batch size
    for k in (4, "auto"):
        assert metrics[k]["steps"] == metrics[1]["steps"] == 3 * math.ceil(train_rows / 2 / batch)
        assert metrics[k]["world_size"] == 2
        assert metrics[k]["test"] == pytest.approx(metrics[1]["test"], rel=1e-4)
    assert metrics[4]["steps_per_call"] == 4 and metrics["auto"]["steps_per_call"] in (1, 2, 4, 8, 16, 32, 64)

"""model.cuda_graphs: a captured training step trains as the eager one (on a GPU), and what it cannot
run is refused in one line before training (on CPU too)."""

import contextlib
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy

import litlab.run.build
import litlab.run.train
from litlab.errors import UserError
from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train
from litlab.speed import SpeedLayer
from litlab.speed import cuda_graphs as graphs
from tests.helpers.config import compose_cfg

NO_GPU = "needs a CUDA GPU: CUDA graphs are captured and replayed on the GPU only"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
# Digits: 40 batches of 32 per epoch, the last one of 9 rows (eager under graphs). One-cycle changes
# the learning rate every step, which the graph reads from a tensor; its momentum cycling is off.
RUN = ["model=mlp", "data.batch_size=32", "callbacks=default", "scheduler=onecycle", "+scheduler.cycle_momentum=false"]
GPU = "trainer.accelerator=gpu"
BUILD_TRAINER = litlab.run.build.build_trainer


class Replays(L.Callback):
    """How many steps the run's captured step replayed, and whether its graph exists at the end."""

    def __init__(self) -> None:
        self.replays, self.captured = 0, False

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        step = pl_module.stepper.captured if isinstance(pl_module, SpeedLayer) else None
        self.replays, self.captured = (step.replays, step.graph is not None) if step else (0, False)


def fit(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> tuple[dict, dict, Replays]:
    """(metrics, the weights in last.ckpt, the replays) of one run on the GPU (RUN, `overrides` after)."""
    spy = Replays()

    def with_spy(*args, extra_callbacks):
        return BUILD_TRAINER(*args, extra_callbacks=[*extra_callbacks, spy])

    monkeypatch.setattr(litlab.run.train, "build_trainer", with_spy)
    metrics = train(compose_cfg(tmp_path / name, *RUN, *overrides))
    weights = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return metrics, weights, spy


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


@needs_gpu
@pytest.mark.parametrize("k", [1, 8])
def test_graphs_train_to_the_same_weights_as_eager_steps(tmp_path, monkeypatch, k):
    run = [GPU, "trainer.max_epochs=2", f"model.steps_per_call={k}"]
    eager, eager_w, _ = fit(tmp_path, "eager", monkeypatch, *run)
    graphed, graphed_w, spy = fit(tmp_path, "graphed", monkeypatch, *run, "model.cuda_graphs=true")
    assert graphed["steps"] == eager["steps"] == 80
    assert spy.replays == 80 - 3 - 2  # 3 warm-up steps, 2 partial last batches run eagerly
    assert_same_weights(eager_w, graphed_w)
    assert graphed["test"] == pytest.approx(eager["test"], rel=1e-4, abs=1e-5)


@needs_gpu
def test_a_resumed_run_captures_again_and_continues_identically(tmp_path, monkeypatch):
    """Saved 24 steps in (mid-epoch), resumed into a new dir: the graph is captured again from the
    restored optimizer state, and the run ends with the uninterrupted run's weights."""
    mid = tmp_path / "mid"
    save = ["+callbacks.mid._target_=lightning.pytorch.callbacks.ModelCheckpoint", f"+callbacks.mid.dirpath={mid}",
            "+callbacks.mid.every_n_train_steps=24", "+callbacks.mid.save_top_k=-1"]  # fmt: skip
    run = [GPU, "trainer.max_epochs=2", "model.cuda_graphs=true"]
    _, whole_w, _ = fit(tmp_path, "whole", monkeypatch, *run, *save)
    ckpt = tmp_path / "step24.ckpt"
    shutil.copy(next(mid.glob("*step=24*.ckpt")), ckpt)
    resumed, resumed_w, spy = fit(tmp_path, "resumed", monkeypatch, *run, f"ckpt_path={ckpt}")
    assert resumed["steps"] == 80 and spy.replays == 80 - 24 - 3 - 2
    assert_same_weights(whole_w, resumed_w)


@needs_gpu
def test_loading_optimizer_state_drops_the_graph_and_bf16_mixed_trains(tmp_path, monkeypatch):
    metrics, _, spy = fit(tmp_path, "bf16", monkeypatch, GPU, "trainer.max_epochs=2", "trainer.precision=bf16-mixed",
                          "model.cuda_graphs=true")  # fmt: skip
    assert spy.replays == 75 and spy.captured and metrics["test"]["test/acc"] > 0.8
    step, optimizer = graphs.CapturedStep(), torch.optim.Adam([torch.zeros(2, device="cuda", requires_grad=True)])
    step.optimizer, step.graph = optimizer, lambda: None
    optimizer.register_load_state_dict_post_hook(step.reset)
    optimizer.load_state_dict(optimizer.state_dict())
    assert step.graph is None and step.warm_steps == 0


@pytest.mark.parametrize("k", [1, 8])
def test_the_captured_steps_bookkeeping_trains_as_eager_steps_with_a_cpu_stand_in(tmp_path, monkeypatch, k):
    """On CPU, with a stand-in for the graph that runs the captured step at each replay: the warm-up
    steps, the capture at the 4th batch, the replays, the eager last batch (gradients zeroed in place)
    and the copies kept for the epoch's metrics train exactly as eager steps do."""
    for name, stand_in in [("capture", lambda step: step), ("side_stream", contextlib.nullcontext),
                           ("uncached_autocast", contextlib.nullcontext), ("make_capturable", lambda opt: None),
                           ("check_trainer", lambda trainer: None)]:  # fmt: skip
        monkeypatch.setattr(graphs, name, stand_in)
    run = ["trainer.max_epochs=1", f"model.steps_per_call={k}"]
    eager, eager_w, _ = fit(tmp_path, "eager", monkeypatch, *run)
    graphed, graphed_w, spy = fit(tmp_path, "graphed", monkeypatch, *run, "model.cuda_graphs=true")
    assert spy.replays == 40 - 3 - 1 and spy.captured
    assert_same_weights(eager_w, graphed_w)
    assert graphed["val"] == pytest.approx(eager["val"], rel=1e-5) and graphed["test"] == pytest.approx(eager["test"])


def test_on_cpu_the_run_is_refused_in_one_line(tmp_path, cli):
    code, _, err = cli("train.py", "model.cuda_graphs=true", "trainer=cpu", "logger=none", "trainer.max_epochs=1",
                       "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("Error: model.cuda_graphs=true needs a CUDA GPU"), err[-2000:]
    assert "Traceback" not in err and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=logistic_regression"], r"does not apply to L-BFGS"),
        (["optimizer=sgd"], r"needs optimizer=adam or adamw.*SGD does not"),
        (["scheduler=onecycle"], r"momentum cycling.*scheduler.cycle_momentum=false"),
    ],
)
def test_settings_a_graph_cannot_step_are_refused_when_the_model_is_built(make_cfg, overrides, message):
    cfg = make_cfg("model.cuda_graphs=true", *overrides)
    with pytest.raises(UserError, match=message):
        build_model(cfg, build_datamodule(cfg))


class FakeTrainer:
    """What graphs.check_trainer reads of a Trainer, for one on a GPU this machine may not have."""

    def __init__(self, strategy: object, world_size: int = 1, scaler: object = None) -> None:
        self.strategy, self.world_size, self.precision = strategy, world_size, "16-mixed"
        self.precision_plugin = type("Plugin", (), {"scaler": scaler})()


def test_ddp_and_a_gradient_scaler_are_refused():
    gpu = SingleDeviceStrategy(device=torch.device("cuda", 0))
    graphs.check_trainer(FakeTrainer(gpu))  # type: ignore[arg-type]  # one GPU, no scaler: runs
    with pytest.raises(UserError, match=r"runs on one GPU; this run has 2 processes"):
        graphs.check_trainer(FakeTrainer(gpu, world_size=2))  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"cannot run trainer.precision=16-mixed.*use trainer.precision=bf16-mixed"):
        graphs.check_trainer(FakeTrainer(gpu, scaler=object()))  # type: ignore[arg-type]

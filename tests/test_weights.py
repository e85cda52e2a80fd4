"""Where a run's weights start (model.init_from), which of them train when (model.freeze_epochs), and
their running average (model.ema), on digits: what is loaded equals the checkpoint, frozen layers do
not move until their epoch, and the average is the same at one and at eight optimizer steps per call."""

import logging
from pathlib import Path

import lightning as L
import pytest
import torch

from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.spies import spy_on

pytestmark = pytest.mark.e2e
MLP = ["model=mlp", "model.hidden_sizes=[32]", "data.batch_size=64"]


def weights(run: Path, key: str = "state_dict") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)[key]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A run dir: the MLP trained one epoch on digits."""
    run = tmp_path_factory.mktemp("source")
    train(compose_cfg(run, *MLP, "trainer.max_epochs=1"))
    return run


def test_init_from_loads_the_layers_that_match_and_says_which_did_not(source, tmp_path, caplog):
    # Another head: the source's output layer (10x32) is this model's second hidden layer (16x32).
    cfg = compose_cfg(tmp_path, *MLP, "model.hidden_sizes=[32,16]", f"model.init_from={source}")
    with caplog.at_level(logging.INFO, logger="litlab.checkpoints.init_from"):
        model = build_model(cfg, build_datamodule(cfg))
    best = torch.load(next((source / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)["state_dict"]
    own = model.state_dict()
    for name in ("net.1.weight", "net.1.bias"):  # the first hidden layer: loaded from the best checkpoint
        torch.testing.assert_close(own[name], best[name], rtol=0, atol=0)
    assert own["net.3.weight"].shape == (16, 32) and own["net.5.weight"].shape == (10, 16)
    line = caplog.messages[-1]
    assert "loaded 1 layers (net.1)" in line, line
    assert "net.3 (10x32 there, 16x32 here)" in line and "net.5 (absent)" in line, line


def test_init_from_the_same_model_loads_everything_and_trains_on(source, tmp_path, caplog):
    cfg = compose_cfg(tmp_path, *MLP, f"model.init_from={source}")
    with caplog.at_level(logging.INFO, logger="litlab.checkpoints.init_from"):
        model = build_model(cfg, build_datamodule(cfg))
    assert "not loaded, freshly initialised: none" in caplog.messages[-1]
    best = torch.load(next((source / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)["state_dict"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0, msg=name)
    assert model.hparams["init_from"] == str(source)  # recorded; a rebuilt model does not load it again


class Moves(L.Callback):
    """Each epoch: which of the module's parameters changed, and the logged train/backbone_lr."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.epochs: list[tuple[set[str], float]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {k: v.detach().clone() for k, v in pl_module.named_parameters()}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        moved = {k for k, v in pl_module.named_parameters() if not torch.equal(v, self.start[k])}
        self.epochs.append((moved, float(trainer.callback_metrics["train/backbone_lr"])))


def test_freeze_epochs_train_the_head_alone_then_every_layer_at_a_lower_rate(tmp_path, monkeypatch):
    moves = Moves()
    spy_on(monkeypatch, moves)
    train(compose_cfg(tmp_path, *MLP, "model.freeze_epochs=2", "trainer.max_epochs=3", "optimizer=adam",
                      "optimizer.lr=0.01"))  # fmt: skip
    head, hidden = {"net.3.weight", "net.3.bias"}, {"net.1.weight", "net.1.bias"}
    (first, lr0), (second, lr1), (third, lr2) = moves.epochs
    assert first == second == head and lr0 == lr1 == 0.0  # epochs 0 and 1: the head alone
    assert third == head | hidden and lr2 == pytest.approx(0.001)  # epoch 2: all, the hidden at a tenth


def test_ema_at_eight_steps_per_call_equals_one_step_per_call_and_is_checkpointed(tmp_path):
    run = [*MLP, "model.ema=0.9", "trainer.max_epochs=2", "model.dropout=0.2"]
    train(compose_cfg(tmp_path / "k1", *run))
    train(compose_cfg(tmp_path / "k8", *run, "model.steps_per_call=8"))
    for key in ("state_dict", "current_model_state"):  # the average, and the weights it averages
        a, b = weights(tmp_path / "k1", key), weights(tmp_path / "k8", key)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=f"{key} {name}")
    average, current = weights(tmp_path / "k1"), weights(tmp_path / "k1", "current_model_state")
    assert not torch.allclose(average["net.1.weight"], current["net.1.weight"], atol=1e-4)


def test_a_run_with_ema_resumed_from_its_first_epoch_ends_as_an_uninterrupted_one(tmp_path):
    run = [*MLP, "model.ema=0.9", "~callbacks.early_stopping"]
    train(compose_cfg(tmp_path / "whole", *run, "trainer.max_epochs=2"))
    train(compose_cfg(tmp_path / "first", *run, "trainer.max_epochs=1"))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(compose_cfg(tmp_path / "resumed", *run, "trainer.max_epochs=2", f"ckpt_path={first}"))
    for key in ("state_dict", "current_model_state"):
        a, b = weights(tmp_path / "whole", key), weights(tmp_path / "resumed", key)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=f"{key} {name}")

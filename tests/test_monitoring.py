"""What the best checkpoint and the end of a run follow: val/loss by default, ties broken by
val/loss, convergence of full-batch training, and a word when val/loss was still improving."""

import logging

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.checkpoints.callbacks import BestCheckpoint
from litlab.models.metrics import resolve_monitor
from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train


@pytest.mark.parametrize(
    ("data", "overrides", "expected"),
    [
        ("digits", [], ("val/loss", "min")),
        ("diabetes", [], ("val/loss", "min")),
        ("breast_cancer", ["monitor.metric=val/acc"], ("val/acc", "max")),
        ("diabetes", ["monitor.metric=val/r2"], ("val/r2", "max")),
        ("diabetes", ["monitor.metric=val/mae"], ("val/mae", "min")),
        ("digits", ["monitor.metric=val/acc", "monitor.mode=max"], ("val/acc", "max")),
        ("diabetes", ["monitor.metric=val/rmse"], ("val/rmse", "min")),
    ],
)
def test_the_monitor_is_val_loss_unless_told_otherwise(make_cfg, data, overrides, expected):
    cfg = make_cfg(f"data={data}", *overrides)
    model = build_model(cfg, build_datamodule(cfg))
    assert resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, model.metric_names("val")) == expected


class Scripted(L.LightningModule):
    """Logs the given val/acc and val/loss at each epoch; trains nothing."""

    def __init__(self, acc: list[float], loss: list[float]) -> None:
        super().__init__()
        self.acc, self.loss = acc, loss
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log_dict({"val/acc": self.acc[self.current_epoch], "val/loss": self.loss[self.current_epoch]})

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize(
    ("loss", "best_epoch"),
    [
        ([0.5, 0.40, 0.45, 0.35], 3),  # epoch 3 ties on acc with a lower val/loss: it wins
        ([0.5, 0.40, 0.45, 0.41], 1),  # every later tie has a higher val/loss: the first stays
    ],
)
def test_a_tie_moves_the_best_checkpoint_only_if_val_loss_is_lower(tmp_path, loss, best_epoch):
    checkpoint = BestCheckpoint(dirpath=tmp_path, filename="epoch_{epoch:03d}", monitor="val/acc", mode="max")
    checkpoint.auto_insert_metric_name = False
    data = DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=4, callbacks=[checkpoint], logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(Scripted([0.8, 0.9, 0.9, 0.9], loss), data, data)
    assert checkpoint.best_model_path.endswith(f"epoch_{best_epoch:03d}.ckpt")
    assert checkpoint.best_tie_breaker == pytest.approx(loss[best_epoch])
    assert [p.name for p in tmp_path.iterdir()] == [f"epoch_{best_epoch:03d}.ckpt"]


def messages(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def test_full_batch_lbfgs_stops_once_its_step_ends_with_the_gradient_within_tolerance(make_cfg, caplog):
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer", "trainer.max_epochs=30")
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert metrics["epochs"] == 1  # epoch 0's step ends by L-BFGS's gradient test: no second epoch to begin
    (line,) = [m for m in messages(caplog).splitlines() if m.startswith("converged: epoch 0's L-BFGS step ended")]
    assert float(line.split(" <= optimizer.tolerance_grad")[0].split()[-1]) <= 1e-7
    assert "had not converged" not in messages(caplog)


def test_float32_lbfgs_that_cannot_reach_the_tolerance_is_not_called_converged(make_cfg, caplog):
    # float32's rounding of the gradient (~1e-7) ends each step before tolerance_grad: a stall, said so
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer", "trainer.precision=32-true",
                   "trainer.max_epochs=30")  # fmt: skip
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert metrics["epochs"] > 1 and "L-BFGS stalled, not converged" in messages(caplog)
    assert not any(r.getMessage().startswith("converged:") for r in caplog.records)


def test_max_epochs_before_convergence_warns_and_says_what_to_raise(make_cfg, caplog):
    cfg = make_cfg("model=logistic_regression", "data=digits", "optimizer.max_iter=3", "trainer.max_epochs=2")
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert "train/loss had not converged when trainer.max_epochs=2 ended the run" in messages(caplog)
    assert "raise trainer.max_epochs, or optimizer.max_iter" in messages(caplog)


def test_lbfgs_on_minibatches_warns(make_cfg, caplog):
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer", "data.batch_size=64", "trainer.max_epochs=1")
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert "L-BFGS on 7 minibatches an epoch" in messages(caplog) and "data.batch_size=full" in messages(caplog)


def test_still_improving_val_loss_is_said_in_one_line(make_cfg, caplog):
    cfg = make_cfg("model=mlp", "data=digits", "trainer.max_epochs=5", "optimizer.lr=1e-4")
    with caplog.at_level(logging.INFO):
        train(cfg)
    lines = [m for m in messages(caplog).splitlines() if "was still improving" in m]
    assert len(lines) == 1 and lines[0].startswith("val/loss was still improving at the end")
    assert "raise trainer.max_epochs" in lines[0]

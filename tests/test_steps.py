"""model.steps_per_call: K optimizer steps per Lightning step train exactly as one step per call."""

import csv
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from litlab.errors import UserError
from litlab.run.train import train
from litlab.speed.steps import choose_k
from tests.helpers.config import compose_cfg
from tests.helpers.spies import ForwardDtypes, spy_on

# Dropout draws random numbers every step and one-cycle changes the rate every step: both must
# happen in the same order. 40 batches per epoch (1257 digits rows / 32).
RUN = ["model=mlp", "model.dropout=0.2", "data.batch_size=32", "scheduler=onecycle", "callbacks=default"]


class Batches(L.Callback):
    """Each epoch's train batches as (batch index, targets), in the order the model saw them."""

    def __init__(self) -> None:
        self.epochs: list[list[tuple[int, list[int]]]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:  # before the module's own hook
        outputs = pl_module.epoch_outputs["train"]
        self.epochs.append([(i, y.tolist()) for i, (_, y, _) in outputs.items()])


def fit(tmp_path: Path, name: str, *overrides: str) -> tuple[dict, dict]:
    """(metrics, the weights in last.ckpt) of one run."""
    metrics = train(compose_cfg(tmp_path / name, *RUN, *overrides))
    weights = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return metrics, weights


def assert_same_run(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    (ma, wa), (mb, wb) = a, b
    assert ma["steps"] == mb["steps"] and ma["epochs"] == mb["epochs"]
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-5, atol=1e-6, msg=key)
    for split in ("val", "test"):
        assert mb[split] == pytest.approx(ma[split], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("k", [3, 8])  # 3 does not divide the 40 batches of an epoch
def test_k_steps_per_call_see_the_same_batches_and_end_with_the_same_weights(tmp_path, monkeypatch, k):
    one, many = Batches(), Batches()
    spy_on(monkeypatch, one)
    a = fit(tmp_path, "k1", "trainer.max_epochs=2")
    spy_on(monkeypatch, many)
    b = fit(tmp_path, f"k{k}", "trainer.max_epochs=2", f"model.steps_per_call={k}")
    assert many.epochs == one.epochs and len(one.epochs[0]) == 40  # same samples, same order
    assert a[0]["steps"] == 80 and a[0]["steps_per_call"] == 1 and b[0]["steps_per_call"] == k
    assert_same_run(a, b)


@pytest.mark.parametrize("scheduler", ["plateau", "step", "cosine"])  # stepped per epoch, by the module at K > 1
def test_epoch_schedulers_step_as_with_one_step_per_call(tmp_path, scheduler):
    run = ["trainer.max_epochs=3", f"scheduler={scheduler}"]
    if scheduler == "step":
        run.append("scheduler.step_size=1")
    assert_same_run(fit(tmp_path, "k1", *run), fit(tmp_path, "k4", *run, "model.steps_per_call=4"))


def test_max_steps_inside_a_call_stops_at_that_step(tmp_path):
    run = ["trainer.max_epochs=5", "++trainer.max_steps=37", "~callbacks.early_stopping"]  # ends before validation
    a, b = fit(tmp_path, "k1", *run), fit(tmp_path, "k8", *run, "model.steps_per_call=8")
    assert b[0]["steps"] == 37
    assert_same_run(a, b)


def test_bf16_mixed_precision_gives_the_same_weights(tmp_path, monkeypatch):
    run = ["trainer.max_epochs=1", "trainer.precision=bf16-mixed"]
    one, many = ForwardDtypes(), ForwardDtypes()
    spy_on(monkeypatch, one)
    a = fit(tmp_path, "k1", *run)
    spy_on(monkeypatch, many)
    b = fit(tmp_path, "k4", *run, "model.steps_per_call=4")
    assert one.dtypes == many.dtypes == {torch.bfloat16}  # both computed in bf16, not float32
    assert_same_run(a, b)


def test_auto_picks_a_power_of_two_and_trains_as_one_step_per_call(tmp_path):
    a, b = (
        fit(tmp_path, "k1", "trainer.max_epochs=1"),
        fit(tmp_path, "auto", "trainer.max_epochs=1", "model.steps_per_call=auto"),
    )
    k = b[0]["steps_per_call"]
    assert k in (1, 2, 4, 8, 16, 32, 64)
    assert_same_run(a, b)
    assert choose_k(1.0) == 1 and choose_k(1e-5) == 64 and choose_k(2e-3) == 4  # 0.4 ms <= 5% of 4 x 2 ms


def loss_steps(run: Path) -> list[tuple[int, float]]:
    with open(run / "csv" / "metrics.csv") as f:
        return [(int(r["step"]), float(r["train/loss_step"])) for r in csv.DictReader(f) if r["train/loss_step"]]


def test_step_loss_is_logged_at_the_same_optimizer_steps(tmp_path):
    run = ["trainer.max_epochs=2", "logger=csv", "trainer.log_every_n_steps=5"]
    fit(tmp_path, "k1", *run)
    fit(tmp_path, "k8", *run, "model.steps_per_call=8")
    one, many = loss_steps(tmp_path / "k1"), loss_steps(tmp_path / "k8")
    assert [s for s, _ in one] == [s for s, _ in many] == list(range(4, 80, 5))
    assert [v for _, v in many] == pytest.approx([v for _, v in one], rel=1e-5)


def test_a_mid_epoch_checkpoint_resumes_exactly(tmp_path):
    """Saved after 48 steps (8 batches into epoch 2), resumed into a new dir: the rest of that
    epoch's batches, the same final weights as without the interruption."""
    mid = tmp_path / "mid"
    save = ["+callbacks.mid._target_=lightning.pytorch.callbacks.ModelCheckpoint", f"+callbacks.mid.dirpath={mid}",
            "+callbacks.mid.every_n_train_steps=24", "+callbacks.mid.save_top_k=-1"]  # fmt: skip
    run = ["trainer.max_epochs=3", "model.steps_per_call=4"]
    whole = fit(tmp_path, "whole", *run, *save)
    ckpt = tmp_path / "step48.ckpt"
    shutil.copy(next(mid.glob("*step=48*.ckpt")), ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["global_step"] == 48
    assert saved["litlab"]["model_class"] == "litlab.models.mlp.MLP"  # the model, not its speed layer's class
    resumed = fit(tmp_path, "resumed", *run, f"ckpt_path={ckpt}")
    assert resumed[0]["resumed_from"] == str(ckpt)
    assert_same_run(whole, resumed)


def test_the_nan_check_stops_a_diverging_run(make_cfg):
    cfg = make_cfg("data=synthetic_regression", "model=mlp", "optimizer=sgd", "optimizer.lr=1e6",
                   "model.steps_per_call=4", "trainer.log_every_n_steps=1")  # fmt: skip
    with pytest.raises(FloatingPointError, match=r"train/loss became (nan|inf).*Lower optimizer.lr"):
        train(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("++trainer.gradient_clip_val=1.0", r"trainer.gradient_clip_val=1.0 needs model.steps_per_call=1"),
        ("++trainer.accumulate_grad_batches=2", r"accumulate_grad_batches=2 needs model.steps_per_call=1.*batch_size"),
        ("++trainer.val_check_interval=0.5", r"val_check_interval=0.5 counts Lightning steps"),
        ("model=logistic_regression", r"does not apply to L-BFGS"),
        ("model.steps_per_call=0", r"model.steps_per_call=0 is invalid: give an integer >= 1"),
    ],
)
def test_what_needs_one_step_per_call_is_refused_before_training(make_cfg, tmp_path, override, message):
    cfg = make_cfg("model.steps_per_call=4", override)
    with pytest.raises(UserError, match=message):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()

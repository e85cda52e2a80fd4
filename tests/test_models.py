"""The models learn: loss goes down everywhere, penalties act, the nets have the documented
shape. (Linear and logistic regression against scikit-learn: test_reference.py.)"""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from litlab.models import CNN, MLP
from litlab.models.nets import ACTIVATIONS, INITS
from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train

# Linear models default to full-batch L-BFGS (lr 1 is its first trial step); the rest to Adam.
COMPATIBLE = [
    ("linear_regression", "diabetes", 1.0),
    ("linear_regression", "synthetic_regression", 1.0),
    ("logistic_regression", "digits", 1.0),
    ("logistic_regression", "breast_cancer", 1.0),
    ("mlp", "digits", 0.01),
    ("mlp", "breast_cancer", 0.01),
    ("mlp", "diabetes", 0.01),
    ("mlp", "synthetic_regression", 0.01),
    ("cnn", "digits", 0.01),
]


@pytest.mark.parametrize(("model_name", "data_name", "lr"), COMPATIBLE, ids=[f"{m}-{d}" for m, d, _ in COMPATIBLE])
def test_loss_goes_down(make_cfg, model_name, data_name, lr):
    cfg = make_cfg(
        f"model={model_name}", f"data={data_name}", "callbacks=none", "trainer.max_epochs=3", f"optimizer.lr={lr}"
    )
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm)
    # inference_mode=False: validating before fit must not leave inference tensors in the metrics
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, inference_mode=False)

    def train_loss() -> float:  # loss over the whole train split, in eval mode
        return trainer.validate(model, dataloaders=dm.train_dataloader(), verbose=False)[0]["val/loss"]

    before = train_loss()
    trainer.fit(model, datamodule=dm)
    after = train_loss()
    assert after < 0.8 * before, f"{model_name} on {data_name}: train loss {before:.4f} -> {after:.4f}"


def test_l1_penalty_makes_weights_sparser(make_cfg, tmp_path):
    """L1 sets the weights of the weakest inputs to about 0; L2 of the same strength only shrinks them."""
    weights, near_zero = {}, {}
    for l1 in (0.0, 0.2):
        cfg = make_cfg(
            "experiment=synthetic_linear",
            "trainer.max_epochs=10",
            "data.input_dim=10",
            f"model.l1={l1}",
            "callbacks=none",
        )
        cfg.paths.output_dir = str(tmp_path / f"l1_{l1}")
        metrics = train(cfg)
        model = instantiate(cfg.model, task="regression", input_shape=[10], num_outputs=1)
        model.load_state_dict(torch.load(metrics["best_ckpt"], weights_only=True)["state_dict"])
        w = model.linear.weight.detach().abs()
        weights[l1], near_zero[l1] = w.sum().item(), int((w < 0.01).sum())
    assert weights[0.2] < weights[0.0]
    assert near_zero[0.2] >= near_zero[0.0] + 2, near_zero  # 4 of 10 against 1 (seed 42)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_cnn_adapts_to_the_input_shape(shape):
    net = CNN(task="multiclass", input_shape=list(shape), num_outputs=10).net
    assert net(torch.randn(4, *shape)).shape == (4, 10)
    # the classic layout: 4 conv blocks, 2 pools, FC 512 -> FC 512 with BN and dropout 0.5
    kinds = [type(m).__name__ for m in net.features]
    assert kinds.count("Conv2d") == 4 and kinds.count("MaxPool2d") == 2 and kinds.count("BatchNorm2d") == 4
    linears = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [512, 512, 10]
    assert [m.p for m in net.head if isinstance(m, nn.Dropout)] == [0.5, 0.5]


# What each init promises the weight of a Linear(fan_in, fan_out): its distribution and std.
PROMISED = {
    "default": lambda fan_in, fan_out: ("uniform", 1 / math.sqrt(3 * fan_in)),  # PyTorch's: U(±1/sqrt(fan_in))
    "xavier": lambda fan_in, fan_out: ("uniform", math.sqrt(2 / (fan_in + fan_out))),  # U(±sqrt(6/(fan_in+fan_out)))
    "kaiming": lambda fan_in, fan_out: ("normal", math.sqrt(2 / fan_in)),  # N(0, 2/fan_in): ReLU's gain, leaky's a=0
    "normal": lambda fan_in, fan_out: ("normal", 0.02),
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("init", INITS)
def test_mlp_every_activation_and_init(activation, init):
    torch.manual_seed(0)  # the bounds below held for each of 300 seeds tried; a fixed one rules out a flake
    model = MLP(
        task="multiclass",
        input_shape=[1, 8, 8],
        num_outputs=10,
        hidden_sizes=[16, 8],
        activation=activation,
        init=init,
        batch_norm=True,
        dropout=0.1,
    )
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert sum(isinstance(m, ACTIVATIONS[activation]) for m in model.net) == 2
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 16), (16, 8), (8, 10)]
    # Every layer's weights, in units of the std its init promises: each layer's std is 1 within
    # four standard errors (any of the other inits misses it by 11% or more in some layer).
    z = []
    for m in linears:
        kind, std = PROMISED[init](m.in_features, m.out_features)
        w = m.weight.detach().flatten() / std
        assert abs(w.std().item() - 1) < 4 / math.sqrt(2 * w.numel()), (init, m)
        if kind == "uniform":
            assert w.abs().max().item() <= math.sqrt(3) * (1 + 1e-6), (init, m)  # never past the bound
        z.append(w)
    weights = torch.cat(z)  # 1232 of them
    assert abs(weights.mean().item()) < 0.15
    if kind == "uniform":  # up to the bound: U(-b, b) has std b/sqrt(3)
        assert weights.abs().max().item() > 0.95 * math.sqrt(3)
    else:  # tails beyond any uniform's bound: normal, not uniform with the same std
        assert weights.abs().max().item() > 1.2 * math.sqrt(3)
    bias = linears[-1].bias.detach()  # the hidden layers have none: BatchNorm follows them
    if init == "default":  # PyTorch's own: U(±1/sqrt(fan_in)), like its weights
        assert (bias != 0).all() and bias.abs().max().item() <= 1 / math.sqrt(8)
    else:
        assert torch.equal(bias, torch.zeros(10))

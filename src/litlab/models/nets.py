"""Plain nn.Modules. They know shapes, not tasks; the LightningModules wrap them."""

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from typing_extensions import override

from litlab.errors import UserError
from litlab.models.tall import TallLinear

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
INITS = ("default", "xavier", "kaiming", "normal")


def _choice(name: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        raise UserError(f"model.{name}={value!r} is invalid; valid: {', '.join(valid)}")
    return value


def init_weights(net: nn.Module, init: str, activation: str = "relu") -> None:
    """Re-initialise every Linear/Conv weight; biases start at 0. 'default' keeps PyTorch's init."""
    _choice("init", init, INITS)
    if init == "default":
        return
    nonlinearity: Literal["leaky_relu", "relu"] = "leaky_relu" if activation in ("leaky_relu", "prelu") else "relu"
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity=nonlinearity)
            else:
                nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def dense_block(n_in: int, n_out: int, activation: str, batch_norm: bool, dropout: float) -> list[nn.Module]:
    """Linear -> [BatchNorm] -> activation -> [Dropout]."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(ACTIVATIONS[_choice("activation", activation, list(ACTIVATIONS))]())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLPNet(nn.Sequential):
    """Flatten -> dense blocks -> Linear(out_features). No hidden sizes makes it a linear model."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        if not 0 <= dropout < 1:
            raise UserError(f"model.dropout={dropout} is invalid; use a value in [0, 1)")
        sizes = [in_features, *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]  # (B, ...) -> (B, F)
        for n_in, n_out in itertools.pairwise(sizes):
            layers += dense_block(n_in, n_out, activation, batch_norm, dropout)
        layers.append(TallLinear(sizes[-1], out_features))  # an nn.Linear, faster in full-batch training
        super().__init__(*layers)


class CNNNet(nn.Module):
    """Conv blocks (Conv -> [BN] -> ReLU, max-pool every `pool_every`) then a dense head.

    'same' padding keeps H and W through each conv and every pool halves them, so the head's
    input size is computed from `input_shape`: 1x8x8, 1x28x28 and 3x32x32 inputs all work.
    Its defaults (the classic MNIST net) are litlab.models.CNN's.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        channels: Sequence[int],
        kernel_size: int,
        pool_every: int,
        batch_norm: bool,
        fc_sizes: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise UserError(f"model.kernel_size={kernel_size} is invalid; use an odd size >= 1, e.g. 3")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for i, c_out in enumerate(channels):
            layers += [nn.Conv2d(c, c_out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers.append(nn.ReLU())
            if pool_every and (i + 1) % pool_every == 0:
                if min(h, w) < 2:
                    raise UserError(
                        f"input {tuple(input_shape)} is too small for {len(channels)} conv blocks pooling "
                        f"every {pool_every}; use fewer channels or a larger model.pool_every"
                    )
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = c_out
        self.features = nn.Sequential(*layers)  # (B, C, H, W) -> (B, c, h, w)
        self.head = MLPNet(c * h * w, fc_sizes, out_features, "relu", dropout, batch_norm)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def flat_size(shape: Sequence[int]) -> int:
    return math.prod(shape)

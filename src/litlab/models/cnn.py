"""Convolutional network for images of any (C, H, W)."""

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from typing_extensions import Unpack, override

from litlab.data_spec import InputKind
from litlab.models.base import SupervisedModule
from litlab.models.nets import CNNNet, init_weights
from litlab.models.settings import ModelArgs


class CNN(SupervisedModule):
    """Conv blocks and a dense head (see CNNNet); the defaults are the classic MNIST net."""

    input_kinds = (InputKind.IMAGE,)  # (C, H, W) inputs only: run.build.build_model checks the data's kind

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] = (32, 32, 64, 64),
        kernel_size: int = 3,
        pool_every: int = 2,
        batch_norm: bool = True,
        fc_sizes: Sequence[int] = (512, 512),
        dropout: float = 0.5,
        init: str = "default",
        channels_last: bool = False,
        **shared: Unpack[ModelArgs],
    ) -> None:
        super().__init__(**shared)
        self.net = CNNNet(
            input_shape, self.num_outputs, list(channels), kernel_size, pool_every, batch_norm, list(fc_sizes), dropout
        )
        init_weights(self.net, init, "relu")
        self.channels_last = channels_last
        if channels_last:  # NHWC: faster convolutions with oneDNN on CPU and tensor cores on GPU
            self.net = self.net.to(memory_format=torch.channels_last)

    @property
    @override
    def backbone(self) -> nn.Module:
        return cast(CNNNet, self.net).features  # the conv blocks; the dense head above them trains from the start

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), stored as NHWC
        return self.net(x)

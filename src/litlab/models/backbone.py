"""A torchvision classifier as the network: its layers up to the last one, and a new output layer
for the data's number of outputs."""

from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models
from typing_extensions import Unpack, override

from litlab.checkpoints import pretrained
from litlab.data_spec import InputKind
from litlab.errors import UserError
from litlab.models.base import SupervisedModule
from litlab.models.settings import ModelArgs


def _resnet_head(net: nn.Module) -> tuple[nn.Module, str]:
    return cast(models.ResNet, net).fc, "fc"


def _last_of_classifier(net: nn.Module) -> tuple[nn.Module, str]:
    classifier = cast(nn.Sequential, net.classifier)  # MobileNetV3's and EfficientNet's: (..., Linear)
    return classifier[-1], f"classifier.{len(classifier) - 1}"


# The architectures offered: each one's output layer (the one replaced) and its name in the state dict.
ARCHS: dict[str, Callable[[nn.Module], tuple[nn.Module, str]]] = {
    "resnet18": _resnet_head,
    "mobilenet_v3_small": _last_of_classifier,
    "efficientnet_b0": _last_of_classifier,
}


class BackboneNet(nn.Module):
    """A torchvision classifier (`body`, its output layer replaced by an identity) and a new Linear
    `head`. Gray inputs are repeated to the 3 channels the architectures take; with `affine` (gain,
    bias: 3 values each) every channel is mapped to `x * gain + bias`; with `image_size` the pictures
    are resized. All inside the network, so predict, export and serve adapt the input as training did."""

    input_gain: torch.Tensor  # buffers, where `affine` is given
    input_bias: torch.Tensor

    def __init__(
        self,
        arch: str,
        input_shape: Sequence[int],
        out_features: int,
        image_size: int | None,
        affine: tuple[list[float], list[float]] | None = None,
    ) -> None:
        super().__init__()
        self.arch, self.gray, self.image_size = arch, input_shape[0] == 1, image_size
        self.body = models.get_model(arch, weights=None)  # ImageNet's 1000 classes, so its weights load
        old, name = ARCHS[arch](self.body)
        self.head_name = name
        self.body.get_submodule(name.rpartition(".")[0] or "").register_module(name.rpartition(".")[2], nn.Identity())
        self.head = nn.Linear(cast(nn.Linear, old).in_features, out_features)
        self.affine = affine is not None
        if affine is not None:  # (3, 1, 1) each: broadcast over (B, 3, H, W)
            # Not in the state dict: they follow from this run's data (the model's hparams rebuild
            # them), so model.init_from can never bring another run's. Exports trace them in.
            self.register_buffer("input_gain", torch.tensor(affine[0]).view(3, 1, 1), persistent=False)
            self.register_buffer("input_bias", torch.tensor(affine[1]).view(3, 1, 1), persistent=False)

    def load_body(self, state: dict[str, torch.Tensor], weights: str) -> None:
        """The body's weights from a state dict of the whole torchvision classifier (its own output
        layer, for another number of classes, is left out)."""
        kept = {k: v for k, v in state.items() if not k.startswith(f"{self.head_name}.")}
        missing, unexpected = self.body.load_state_dict(kept, strict=False)
        if missing or unexpected:
            wrong = (missing or unexpected)[0]
            raise UserError(
                f"model.weights={weights!r} does not hold {self.arch}'s weights ({wrong} "
                f"{'missing' if missing else 'unexpected'}); give weights of model.arch={self.arch}"
            )

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, out_features)
        if self.gray:
            x = x.expand(-1, 3, -1, -1)
        if self.affine:  # before resizing: the same result (both per channel), on fewer pixels
            x = torch.addcmul(self.input_bias, x, self.input_gain)
        if self.image_size is not None:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.head(self.body(x))


class Backbone(SupervisedModule):
    """A torchvision classifier (`arch`), from random weights (`weights` none) or from `weights`: a
    file holding its state dict, or one of torchvision's published weights (e.g. IMAGENET1K_V1,
    read from torch's hub cache). Its output layer is replaced for the data's classes; with
    model.freeze_epochs the new head trains alone first. Published weights get the input they were
    trained on: the data's scaling undone (`pixel_unit`), their own mean and std, and their size
    where `image_size` is null."""

    input_kinds = (InputKind.IMAGE,)

    def __init__(
        self,
        input_shape: Sequence[int],
        arch: str = "resnet18",
        weights: str | None = None,
        image_size: int | None = None,
        **shared: Unpack[ModelArgs],
    ) -> None:
        super().__init__(**shared)
        self.weights = None if weights in (None, "none") else str(weights)
        check_settings(arch, input_shape[0], image_size)
        meta = pretrained.input_meta(arch, self.weights)
        if meta is None or self.pixel_unit is None:  # pixel_unit None (hparams without it): the input as it comes
            affine, size = None, image_size
        else:
            affine, size = weights_input(meta, input_shape[0], self.pixel_unit), image_size or meta.size
        self.net = BackboneNet(arch, input_shape, self.num_outputs, size, affine)

    @property
    @override
    def backbone(self) -> nn.Module:
        return cast(BackboneNet, self.net).body

    @override
    def load_start_weights(self, log_dir: str) -> None:
        if self.weights is not None:  # then model.init_from, which may replace some of them
            net = cast(BackboneNet, self.net)
            net.load_body(pretrained.state_dict(net.arch, self.weights), self.weights)
        super().load_start_weights(log_dir)


def check_settings(arch: str, channels: int, image_size: int | None) -> None:
    if arch not in ARCHS:
        raise UserError(f"model.arch={arch!r} is invalid; valid: {', '.join(ARCHS)}")
    if channels not in (1, 3):
        raise UserError(f"model=backbone takes 1- or 3-channel pictures; the data gives {channels} channels")
    if image_size is not None and not (isinstance(image_size, int) and image_size >= 16):
        raise UserError(
            f"model.image_size={image_size!r} is invalid: null (the weights' size, or the data's) or pixels >= 16"
        )


def weights_input(
    meta: pretrained.InputMeta, channels: int, pixel_unit: list[list[float]]
) -> tuple[list[float], list[float]]:
    """Gain and bias for each of the 3 channels the network takes, from the data's `channels`
    (1: repeated): the data's scaling undone (`pixel_unit`: x * gain + bias is in [0, 1]), then
    standardised with the weights' mean and std."""
    gain, bias = pixel_unit
    source = [0, 0, 0] if channels == 1 else [0, 1, 2]
    return (
        [gain[c] / std for c, std in zip(source, meta.std, strict=True)],
        [(bias[c] - mean) / std for c, mean, std in zip(source, meta.mean, meta.std, strict=True)],
    )

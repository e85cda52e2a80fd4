"""The weights `model.weights` names for a torchvision architecture: a file on disk, or one of
torchvision's published weights, looked up first in torch's hub cache (`$TORCH_HOME/hub/checkpoints`,
where torchvision keeps what it downloads) and downloaded there only when it is not. Both are read
with weights_only=True."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import models

from litlab.checkpoints import store
from litlab.errors import UserError

log = logging.getLogger(__name__)
KEY = "model.weights"


def state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    """The state dict of `weights`: a path to a file, or one of `arch`'s published weights, by its
    name (IMAGENET1K_V1, DEFAULT) or torchvision's full one (ResNet18_Weights.IMAGENET1K_V1)."""
    path = Path(weights).expanduser()
    if path.is_file():
        return tensors(store.load(path, key=KEY), weights)
    url = published(arch, weights).url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not cached.is_file():
        download(url, cached, weights)
    return tensors(store.load(cached, key=KEY), weights)


def published(arch: str, weights: str) -> models.WeightsEnum:
    """`arch`'s published weights named `weights`; a UserError when there are none of that name."""
    found = lookup(arch, weights)
    if found is None:
        names = [w.name for w in models.get_model_weights(arch)]
        raise UserError(
            f"{KEY}={weights!r} is neither a file nor a weight of {arch}; give a path to a saved state dict, "
            f"one of {', '.join(names)}, DEFAULT, or none (random weights)"
        )
    return found


def lookup(arch: str, weights: str) -> models.WeightsEnum | None:
    """`arch`'s published weights named `weights` (IMAGENET1K_V1, DEFAULT, or torchvision's full
    name), or None."""
    enum = models.get_model_weights(arch)  # the enum of arch's weights, e.g. ResNet18_Weights
    name = weights.removeprefix(f"{enum.__name__}.")
    return enum[name] if name in [*(w.name for w in enum), "DEFAULT"] else None


@dataclass(frozen=True)
class InputMeta:
    """What published weights were trained on: pictures `size` pixels square, each channel in [0, 1]
    then standardised with `mean` and `std` (3 values each, RGB)."""

    size: int
    mean: list[float]
    std: list[float]


def input_meta(arch: str, weights: str | None) -> InputMeta | None:
    """The input `weights` expect, from the published weights' own transforms; None for random
    weights or a file (whose training input litlab cannot know; one no longer there is refused
    only where its weights are loaded)."""
    found = None if weights is None or Path(weights).expanduser().is_file() else lookup(arch, weights)
    if found is None:
        return None
    preset = found.transforms()  # torchvision's ImageClassification preset
    return InputMeta(int(preset.crop_size[0]), list(preset.mean), list(preset.std))


def download(url: str, to: Path, weights: str) -> None:
    log.info("%s=%s is not in %s: downloading %s", KEY, weights, to.parent, url)
    try:
        store.fetch_whole(url, to)
    except OSError as e:
        raise UserError(
            f"{KEY}={weights}: not in torch's hub cache ({to}) and not downloadable here ({e}); copy the file "
            f"there, or give {KEY}=PATH to a saved state dict"
        ) from e


def tensors(loaded: object, weights: str) -> dict[str, torch.Tensor]:
    """A plain state dict (what torch.save(model.state_dict()) writes), or the network's tensors
    inside a checkpoint that wraps one ('state_dict')."""
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(
            f"{KEY}={weights!r} holds no state dict of tensors; save one with torch.save(model.state_dict())"
        )
    return state

"""`model.init_from`: start training from the layers of another run's checkpoint that fit.

A tensor is loaded when the new model has one of the same name and shape (a CNN trained on
MNIST gives its convolutions and dense layers to a CNN for another 1x28x28 task, not its output
layer when the number of classes differs); the rest keep their fresh initialisation. One line
says what was loaded and what was not; nothing matching is a UserError.
"""

import logging
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from litlab.checkpoints import store
from litlab.errors import UserError

log = logging.getLogger(__name__)
KEY = "model.init_from"


def load_matching(model: nn.Module, source: str, log_dir: str | Path) -> None:
    """Copy into `model` every tensor of `source` (a .ckpt, a run dir: its best checkpoint, or
    'latest') whose name and shape match one of the model's own."""
    path = store.resolve(source, log_dir, prefer="best", key=KEY)
    theirs = store.load(path, key=KEY).get("state_dict")
    if not isinstance(theirs, dict):
        raise UserError(f"{KEY}={source!r}: {path} holds no state_dict; give a checkpoint of train.py or its run dir")
    own = model.state_dict()
    matching = {k: v for k, v in theirs.items() if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape}
    if not matching:
        raise UserError(
            f"{KEY}={source!r}: none of its {len(theirs)} tensors has a name and shape of this model's "
            f"(it holds {sample(theirs)}; this model {sample(own)}); start from a run of the same model, "
            "or leave model.init_from unset"
        )
    model.load_state_dict(matching, strict=False)
    loaded, missed = by_layer(own, theirs, set(matching))
    log.info(
        "%s=%s: loaded %d layers (%s) from %s; not loaded, freshly initialised: %s",
        KEY, source, len(loaded), ", ".join(loaded), path, "; ".join(missed) or "none",
    )  # fmt: skip


def by_layer(own: dict, theirs: dict, loaded: set[str]) -> tuple[list[str], list[str]]:
    """The model's layers (a tensor's name without its last part) whose tensors were all loaded,
    and for each other one why not: absent from the checkpoint, or its shape there and here."""
    layers: dict[str, list[str]] = defaultdict(list)
    for name in own:
        layers[name.rpartition(".")[0]].append(name)
    done, missed = [], []
    for layer, names in layers.items():
        if all(n in loaded for n in names):
            done.append(layer)
            continue
        wrong = next(n for n in names if n not in loaded)
        reason = "absent" if wrong not in theirs else f"{shape(theirs[wrong])} there, {shape(own[wrong])} here"
        missed.append(f"{layer} ({reason})")
    return done, missed


def shape(t: object) -> str:
    return "x".join(map(str, t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def sample(state: dict, n: int = 3) -> str:
    """A few names and shapes of a state dict, for a message."""
    items = [f"{k} {shape(v)}" for k, v in list(state.items())[:n]]
    return ", ".join(items) + (", ..." if len(state) > n else "") if items else "no tensors"

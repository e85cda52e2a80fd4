"""What a run resumed from a checkpoint needs to end exactly as an uninterrupted one would."""

import random
from pathlib import Path

import lightning as L
import numpy as np
import torch

from litlab import checkpoint
from litlab.errors import UserError


class RandomState(L.Callback):
    """Keeps the random generators (torch's CPU and CUDA, numpy's, python's) in every checkpoint
    and restores them on resume, so that dropout and augmentation draw the same numbers as in
    an uninterrupted run. Lightning keeps none of them. Batch order needs none: it is seeded
    by the epoch (litlab.data.batches)."""

    def state_dict(self) -> dict:
        state = np.random.get_state()
        assert isinstance(state, tuple)  # the legacy tuple form, the default
        name, keys, pos, has_gauss, cached = state
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            # plain lists and tuples, which torch.load(weights_only=True) reads
            "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict["cuda"]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))


def check_resumable(path: Path, model: L.LightningModule) -> None:
    """Fail before training if checkpoint `path` cannot continue `model`: a file of another kind,
    or the weights of another model (another model=, hidden sizes or data)."""
    ckpt = checkpoint.load(path)
    weights = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(weights, dict) or "loops" not in ckpt:
        raise UserError(f"ckpt_path={str(path)!r} holds no training state to resume; give a .ckpt written by train.py")
    wrong = [k for k, v in model.state_dict().items() if k not in weights or weights[k].shape != v.shape]
    if wrong:
        raise UserError(
            f"ckpt_path={str(path)!r} holds a different model ({wrong[0]} does not match): resume with the model "
            "and data it was trained with, as in the config.yaml of its run"
        )

"""Reading a checkpoint written by train.py, with one clear error for anything else."""

from pathlib import Path

import torch


def checkpoint_classes(path: str | Path) -> tuple[dict, dict]:
    """The model and DataModule classes litlab recorded in checkpoint `path`, and the checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={str(path)!r}: no such file; give a .ckpt written by train.py "
            "(e.g. logs/train/runs/<run>/checkpoints/last.ckpt)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ValueError(f"ckpt_path={str(path)!r} is not a readable PyTorch checkpoint: {e}") from e
    classes = checkpoint.get("litlab")
    if not classes or not classes.get("datamodule_class"):
        raise ValueError(
            f"ckpt_path={str(path)!r} was not written by litlab's train.py "
            "(it has no 'litlab' entry naming its model and data classes)"
        )
    return classes, checkpoint

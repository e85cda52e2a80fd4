"""Checkpoints written whole. Lightning's TorchCheckpointIO writes straight to the checkpoint's
name, so a full disk or a kill mid-write leaves a truncated file there, which the next resume or
evaluate would pick; this one writes to a temporary name beside it and renames (litlab.files)."""

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from litlab.files import written_whole


class WholeCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local checkpoint files are written whole; remote ones (s3://...) as before."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        # Through a Python file: torch.save to a file name reports a full disk as a RuntimeError.
        with written_whole(Path(path)) as temporary, open(temporary, "wb") as f:
            torch.save(checkpoint, f)

    @override
    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        # Always weights_only=True, whoever asks: Lightning's own restores (the tuner putting the
        # model back from its temporary checkpoint) pass weights_only=False.
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)

"""serve.py: the server of a checkpoint or a bundle. The model is loaded here first, so that a bad
checkpoint or bundle is one line before any server starts, and again in LitServe's worker."""

from functools import partial

from litlab.checkpoints import store
from litlab.run.predict import checkpoint_predictor
from litlab.runtime.serve import serve


def serve_checkpoint(ckpt_path: str, log_dir: str, port: int) -> None:
    """The checkpoint's LightningModule, run by PyTorch on the CPU."""
    path = store.resolve(ckpt_path, log_dir, prefer="best")
    checkpoint_predictor(path)
    serve(partial(checkpoint_predictor, path), port, f"checkpoint {path}")

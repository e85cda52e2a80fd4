"""serve.py: the server of a checkpoint or a bundle. The settings are checked and the model loaded here
first, so that a bad port or checkpoint is one line before any server starts, and the model loaded
again in LitServe's worker."""

from functools import partial

from litlab.checkpoints import store
from litlab.inference.checkpoint import checkpoint_predictor
from litlab.runtime.server import Settings, serve


def serve_checkpoint(ckpt_path: str, log_dir: str, port: object, max_request_mb: object) -> None:
    """The checkpoint's LightningModule, run by PyTorch on the CPU."""
    settings = Settings.checked(port, max_request_mb)
    path = store.resolve(ckpt_path, log_dir, prefer="best")
    checkpoint_predictor(path)
    serve(partial(checkpoint_predictor, path), settings, f"checkpoint {path}")

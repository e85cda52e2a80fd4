"""Serve a model on 127.0.0.1: `python serve.py ckpt_path=RUN [port=8000]` or `python serve.py bundle=DIR`.

POST /predict with {"rows": [...]} (tables) or {"images": [base64, ...]} (images); GET /health.
A bundle is served by onnxruntime without importing torch (docs/deploy.md).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://litlab.conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    from litlab.errors import exit_on_user_error  # here: --help and --cfg import no torch (see train.py)
    from litlab.runtime.cli import one_model

    exit_on_user_error(lambda: one_model(cfg.ckpt_path, cfg.bundle), cfg.extras.traceback)
    if cfg.bundle is not None:
        from litlab.runtime.server import serve_bundle  # onnxruntime and LitServe only

        exit_on_user_error(lambda: serve_bundle(cfg.bundle, cfg.port, cfg.max_request_mb), cfg.extras.traceback)
        return
    from litlab.inference.serve_checkpoint import serve_checkpoint

    exit_on_user_error(
        lambda: serve_checkpoint(cfg.ckpt_path, cfg.paths.log_dir, cfg.port, cfg.max_request_mb), cfg.extras.traceback
    )


if __name__ == "__main__":
    from litlab.conf import DIR as CONF_DIR
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there
    from litlab.runtime.cli import names_bundle, without_callbacks

    if names_bundle(sys.argv[1:]):
        sys.argv += without_callbacks(CONF_DIR)
    if not answer_help(Path(__file__), "serve", sys.argv[1:]):
        main()

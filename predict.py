"""Predict with a checkpoint or a bundle: `python predict.py ckpt_path=CKPT input=PATH [output=FILE]`,
or `python predict.py bundle=BUNDLE_DIR input=PATH` (onnxruntime only: torch is never imported).

CKPT: a .ckpt file, or a run dir (its best checkpoint). BUNDLE_DIR: a folder written by export.py.
PATH: a CSV with the training feature columns, a folder of PNG/JPG images, or a .npy array.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://litlab.conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from litlab.errors import exit_on_user_error  # here: --help and --cfg import no torch (see train.py)
    from litlab.runtime.cli import one_model

    exit_on_user_error(lambda: one_model(cfg.ckpt_path, cfg.bundle), cfg.extras.traceback)
    if cfg.bundle is not None:
        from litlab.runtime.predict_files import predict_bundle  # numpy, pandas and onnxruntime only

        exit_on_user_error(lambda: predict_bundle(cfg.bundle, cfg.input, cfg.output), cfg.extras.traceback)
        return
    from litlab.inference.checkpoint import predict

    exit_on_user_error(lambda: predict(cfg.ckpt_path, cfg.input, cfg.output, cfg.paths.log_dir), cfg.extras.traceback)


if __name__ == "__main__":
    from litlab.conf import DIR as CONF_DIR
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there
    from litlab.runtime.cli import names_bundle, without_callbacks

    if names_bundle(sys.argv[1:]):
        sys.argv += without_callbacks(CONF_DIR)
    if not answer_help(Path(__file__), "predict", sys.argv[1:]):
        main()

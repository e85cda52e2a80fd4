"""Predict with a checkpoint: `python predict.py ckpt_path=CKPT input=PATH [output=FILE]`.

CKPT: a .ckpt file, or a run dir (its best checkpoint). PATH: a CSV with the training feature
columns, a folder of PNG/JPG images, or a .npy array.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from litlab.errors import exit_on_user_error  # here: --help and --cfg import no torch (see train.py)
    from litlab.run.predict import predict

    exit_on_user_error(lambda: predict(cfg.ckpt_path, cfg.input, cfg.output, cfg.paths.log_dir), cfg.extras.traceback)


if __name__ == "__main__":
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there

    if not answer_help(Path(__file__), "predict", sys.argv[1:]):
        main()

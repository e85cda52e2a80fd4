"""Test a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>` (its best checkpoint)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://litlab.conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from litlab.errors import exit_on_user_error  # here: --help and --cfg import no torch (see train.py)
    from litlab.run.evaluate import evaluate

    exit_on_user_error(lambda: evaluate(cfg), cfg.extras.traceback)


if __name__ == "__main__":
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there

    if not answer_help(Path(__file__), "eval", sys.argv[1:]):
        main()

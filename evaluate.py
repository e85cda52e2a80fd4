"""Test a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>` (its best checkpoint)."""

import hydra
from omegaconf import DictConfig

from litlab.errors import exit_on_user_error
from litlab.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: evaluate(cfg), cfg.extras.traceback)


if __name__ == "__main__":
    main()

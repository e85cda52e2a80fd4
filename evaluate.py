"""Test a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt`."""

import hydra
from omegaconf import DictConfig

from litlab.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()

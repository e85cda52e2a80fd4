"""Train one model: `python train.py model=cnn optimizer.lr=0.01`, or sweep with `-m`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://litlab.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Imported here, after Hydra has parsed the command line: --help, --cfg and --info need
    # no torch or Lightning, and answer at once.
    from litlab.run.job import run_recorded
    from litlab.run.train import train

    # The returned value is what Hydra sweepers optimize. A failure or an interrupt is recorded
    # in the run dir (metrics.json); in a multirun the other jobs go on after a failure.
    return run_recorded(train, cfg)["optimized_metric"]


if __name__ == "__main__":
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there

    if not answer_help(Path(__file__), "train", sys.argv[1:]):
        main()

"""litlab's Hydra configs, shipped inside the package (Hydra finds them as `pkg://litlab.conf`)."""

from pathlib import Path

DIR = Path(__file__).parent  # the folder of train.yaml, eval.yaml, ... and the config groups

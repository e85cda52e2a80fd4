"""Which of litlab's optional parts this install has. `pip install litlab` is the runtime alone (a
bundle's prediction and serving, no torch); training and the tools around it are the `train` extra,
MLflow the `mlflow` extra. A command that needs a part the install lacks says so in one line, with
the pip command that adds it, before anything imports it."""

import importlib.util

from litlab.errors import UserError

# The packages each extra brings that its commands import (pyproject.toml's optional-dependencies).
EXTRAS = {
    "train": ("torch", "lightning", "torchvision", "torchmetrics", "sklearn", "matplotlib", "optuna"),
    "mlflow": ("mlflow",),
}


def require_extra(command: str, extra: str, note: str = "") -> None:
    """A UserError naming what `command` needs and how to install it, if any of it is missing."""
    missing = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(
            f'{command} needs {", ".join(missing)}, which this install lacks: pip install "litlab[{extra}]"{note}'
        )

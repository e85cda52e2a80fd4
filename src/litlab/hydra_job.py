"""A job as Hydra runs it: its command-line overrides (read, and parsed into key -> text), and
whether it is one job of a multirun."""

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def job_overrides() -> list[str]:
    """This job's overrides (`['model=cnn', 'optimizer.lr=0.01']`); [] outside a Hydra app."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """['optimizer.lr=0.1', '+x=1', 'model=cnn'] -> {'optimizer.lr': '0.1', 'x': '1', 'model': 'cnn'}."""
    pairs = (o.split("=", 1) for o in overrides if "=" in o)
    return {k.lstrip("+~"): v for k, v in pairs}


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN

"""A job's command-line overrides: read from Hydra, and parsed into key -> text."""

from hydra.core.hydra_config import HydraConfig


def job_overrides() -> list[str]:
    """This job's overrides (`['model=cnn', 'optimizer.lr=0.01']`); [] outside a Hydra app."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """['optimizer.lr=0.1', '+x=1', 'model=cnn'] -> {'optimizer.lr': '0.1', 'x': '1', 'model': 'cnn'}."""
    pairs = (o.split("=", 1) for o in overrides if "=" in o)
    return {k.lstrip("+~"): v for k, v in pairs}

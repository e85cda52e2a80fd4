"""The repo's paths, and its real `conf/` composed and shrunk: CPU, few epochs, no logger unless
asked, output in a temp dir."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "src" / "litlab" / "conf"

SHRINK = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
    "extras.print_config=false",
]

# For runs whose loggers a test reads (sweeps): one epoch of a small MLP.
QUICK = [
    *(o for o in SHRINK if not o.startswith(("logger=", "trainer.max_epochs="))),
    "trainer.max_epochs=1",
    "model.hidden_sizes=[32]",
]

# For runs whose tests read what a run writes (its dirs, names, records, curves), neither how well it
# learnt nor its test-set figures: two training batches an epoch, one of validation and one of test,
# and no figures (drawing them is about half of a small run's time).
LIGHT = ["++trainer.limit_train_batches=2", "++trainer.limit_val_batches=1", "++trainer.limit_test_batches=1",
         "~callbacks.test_figures"]  # fmt: skip


def compose_cfg(tmp_path: Path, *overrides: str, config_name: str = "train", shrink: bool = True) -> DictConfig:
    """Compose the real config with `overrides`, writing everything under `tmp_path`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=[*(SHRINK if shrink else []), *overrides])
    with open_dict(cfg):  # outside a Hydra app there is no hydra:runtime.output_dir to interpolate
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg

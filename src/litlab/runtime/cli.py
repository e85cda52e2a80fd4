"""What predict.py and serve.py decide before Hydra runs: whether the command names a bundle
(`bundle=DIR`), which then needs none of Hydra's Lightning-importing callbacks, and that exactly
one of ckpt_path and bundle is given."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litlab.errors import UserError, exit_with

KEY = "bundle"


def names_bundle(argv: list[str]) -> bool:
    """The command line gives `bundle=DIR` (a bundle, predicted by onnxruntime alone). `model=DIR` is
    refused in one line: conf/model/ is litlab train's model group, and Hydra takes `model=` as a choice of
    that group, never as a value, so the bundle has its own key."""
    if any(arg.startswith(("model=", "+model=", "++model=")) for arg in argv):
        exit_with(UserError(f"give the exported model as {KEY}=DIR (model= is litlab train's model group)"))
    return any(arg.startswith(f"{KEY}=") and arg != f"{KEY}=null" for arg in argv)


# The callbacks a bundle's prediction keeps: they import Hydra and OmegaConf only.
TORCH_FREE_CALLBACKS = frozenset({"boolean_settings"})


def without_callbacks(conf_dir: Path) -> list[str]:
    """Overrides that drop conf/hydra/default.yaml's callbacks that import Lightning (the run dir
    check, MLflow's store, the sweep end), which a bundle's prediction must not; predictions.csv is
    never overwritten anyway (runtime/predict_files.py). The boolean settings' check stays."""
    hydra = OmegaConf.load(conf_dir / "hydra" / "default.yaml")
    callbacks = hydra.get("callbacks") if isinstance(hydra, DictConfig) else None
    return [f"~hydra.callbacks.{name}" for name in (callbacks or {}) if name not in TORCH_FREE_CALLBACKS]


def one_model(ckpt_path: str | None, bundle: str | None) -> None:
    """Exactly one of them: a checkpoint (torch) or a bundle (onnxruntime)."""
    if (ckpt_path is None) == (bundle is None):
        given = "both" if ckpt_path is not None else "neither"
        raise UserError(
            f"give exactly one of ckpt_path=RUN (a checkpoint or run dir) and {KEY}=DIR (a bundle of litlab export), "
            f"not {given}"
        )

"""The composed config, printed as a rich tree at the start of a run."""

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

ORDER = ("data", "model", "optimizer", "scheduler", "callbacks", "logger", "trainer", "paths")


def print_config_tree(cfg: DictConfig) -> None:
    """One branch per top-level key, groups first, each branch the resolved YAML."""
    tree = rich.tree.Tree("CONFIG", style="bold", guide_style="dim")
    keys = [k for k in ORDER if k in cfg] + [k for k in cfg if k not in ORDER and k != "hydra"]
    for key in keys:
        branch = tree.add(str(key), style="bold")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    rich.print(tree)

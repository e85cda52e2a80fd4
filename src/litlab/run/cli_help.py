"""`litlab train --help [overrides] [--resolve]` (and `python train.py --help ...`), answered in a
fraction of Hydra's time.

Why not Hydra's own --help: to list the config groups it builds a new config repository for each
group, and each one deep-copies the whole ConfigStore (Hydra's and the launcher plugins' schemas,
~12 ms a copy, ~110 copies here: over a second). Here the groups are read from the conf/ files and
the config is composed once, with Hydra's compose API. Hydra's help template (`hydra.help`) is
used as is. Any other form (--config-name, --hydra-help, -m, a template naming Hydra's flags) is
left to Hydra.
"""

import copy
import string
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict

from litlab.conf import DIR as CONF_DIR

HELP_FLAGS = {"--help", "-h"}
# Flags taking a value, or changing what Hydra composes: those --help requests go to Hydra.
HYDRA_FLAGS = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "--experimental-rerun",
               "-m", "--multirun", "-i", "--info", "-c", "--cfg", "-p", "--package"}  # fmt: skip


def config_groups(conf_dir: Path) -> str:
    """`group: option, option` per config group of the app, as Hydra's $APP_CONFIG_GROUPS lists
    them (the shared parts of options, such as data_shared.yaml, sit beside the groups, not in them)."""
    lines = []
    for group in sorted(p for p in conf_dir.rglob("*") if p.is_dir()):
        name = group.relative_to(conf_dir).as_posix()
        options = sorted(f.stem for f in group.glob("*.yaml"))
        if options and name.split("/")[0] != "hydra":
            lines.append(f"{name}: {', '.join(options)}")
    return "\n".join(lines) + "\n"


def help_text(config_name: str, overrides: list[str], resolve: bool) -> str | None:
    """The help Hydra would print for the command of `config_name` (litlab's conf/), or None where
    its template needs Hydra's own values."""
    conf_dir = CONF_DIR
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # --resolve may read ${hydra:...}
    template = string.Template(cfg.hydra.help.template)
    if set(template.get_identifiers()) - {"APP_CONFIG_GROUPS", "CONFIG"}:
        return None
    job_cfg = copy.deepcopy(cfg)
    with open_dict(job_cfg):
        del job_cfg["hydra"]
    return template.substitute(APP_CONFIG_GROUPS=config_groups(conf_dir),
                               CONFIG=OmegaConf.to_yaml(job_cfg, resolve=resolve))  # fmt: skip


def answer_help(config_name: str, argv: list[str]) -> bool:
    """Print the help and return True if `argv` asks for it in the plain form; else False."""
    if not HELP_FLAGS & set(argv) or HYDRA_FLAGS & set(argv):
        return False
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        text = help_text(config_name, overrides, resolve="--resolve" in argv)
    except HydraException as e:  # a bad override: Hydra's message, without its --help traceback
        print(e, file=sys.stderr)
        raise SystemExit(1) from None
    if text is None:
        return False
    print(text)
    return True

"""A default of a litlab class given both in a YAML option and in the class's signature is the
same value in both, so that the class built without the config (a test, a notebook) behaves as
the config says."""

import inspect

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from tests.helpers.config import CONF

GROUPS = ("model", "data", "callbacks", "scheduler", "optimizer", "logger")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def targets(node: object) -> list[DictConfig]:
    """Every node with a `_target_` in `node` (a group's config may hold several, like callbacks)."""
    if not isinstance(node, DictConfig):
        return []
    found = [node] if "_target_" in node else []
    return found + [t for key in node if not str(key).startswith("_") for t in targets(node._get_node(key))]


def plain(value: object) -> object:
    """Lists and tuples alike: YAML gives lists, signatures tuples."""
    return list(value) if isinstance(value, list | tuple) else value


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_a_default_in_yaml_and_python_is_the_same(group, option):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"{group}={option}"])
    differ = []
    for node in targets(cfg[group]):
        if not node._target_.startswith("litlab."):
            continue  # an upstream class (a torch optimizer): the YAML value is litlab's choice, its one place
        cls = get_class(node._target_)
        params = inspect.signature(cls).parameters
        yaml = OmegaConf.to_container(node, resolve=False)
        assert isinstance(yaml, dict)
        for key, value in yaml.items():
            param = params.get(str(key))
            if param is None or param.default is inspect.Parameter.empty or OmegaConf.is_interpolation(node, key):
                continue
            if plain(param.default) != plain(value):
                differ.append(f"{node._target_}.{key}: YAML {value!r}, Python {param.default!r}")
    assert not differ, differ

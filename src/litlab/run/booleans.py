"""The Hydra callback that holds every boolean setting to true or false, before anything runs.

Hydra reads `key=true` and `key=false` as booleans and any other word as text, which Python then
counts as true: `calibrate=no` would calibrate. A boolean setting is one whose value in the
entry point's own config is true or false (composed with the command line's group choices, so a
new boolean key is covered as soon as it is written); given anything else, on the command line
or as one value of a sweep, it is one line naming the key and the value.

Composing that config again costs about half a second, so it is done only when it can find
something: when the last part of a key the command line gives a non-boolean (`path` of
`data.path=x.csv`) is the name of a boolean somewhere in the run's config sources (a true or false
in one of their YAML files). Reading those names takes a few milliseconds; where a source cannot be
read, the config is composed as before.
"""

from collections.abc import Iterator
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf
from typing_extensions import override

from litlab.errors import UserError, exit_on_user_error

# Boolean keys whose class takes one more word besides true and false.
ALSO_VALID: dict[str, tuple[object, ...]] = {"trainer.deterministic": ("warn",)}

# libyaml's parser where PyYAML has it: the config files are read in milliseconds.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BOOL_TAG, STR_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:str"


class BooleanSettings(Callback):
    """Refuses, with one line and exit code 2, a boolean setting given as anything but true or
    false, before Hydra creates a run's dir or a sweep starts its jobs."""

    @override
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_user_error(lambda: check_booleans(config), wants_traceback(config))

    @override
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_user_error(lambda: check_booleans(config), wants_traceback(config))


def wants_traceback(config: DictConfig) -> bool:
    return config.get("extras", {}).get("traceback") is True  # `extras.traceback=no` is refused, not true


def check_booleans(config: DictConfig) -> None:
    """Each key the command line sets (each value of a sweep over it) that is a boolean setting is true or false."""
    choices = config.hydra.runtime.get("choices", {})
    parser = OverridesParser.create()
    overrides = parser.parse_overrides([str(o) for o in config.hydra.overrides.task])
    groups = tuple(o.input_line for o in overrides if is_group(o, choices) and not o.is_sweep_override())
    suspects = {}
    for o in overrides:
        values = [] if is_group(o, choices) or o.is_delete() else not_booleans(o, config)
        if values:
            suspects[o.key_or_group] = values[0]
    if not suspects:
        return  # nothing to compose: true, false and group choices are all the command line gives
    names = boolean_names(config.hydra.runtime.get("config_sources"))
    if names is not None and not any(key.rpartition(".")[2] in names for key in suspects):
        return  # no config source has a boolean of any of these names: none of them is a boolean setting
    flags = boolean_keys(config.hydra.job.config_name, groups)
    for key, value in suspects.items():
        if key in flags:
            raise UserError(f"{key}={value!r} is invalid: give true or false, e.g. {key}=true")


def is_group(o: Override, choices: DictConfig) -> bool:
    """A choice of a config group (`model=cnn`, `hydra/launcher=parallel`), or a Hydra setting."""
    return o.key_or_group in choices or o.package is not None or o.key_or_group.startswith("hydra.")


def not_booleans(o: Override, config: DictConfig) -> list[object]:
    """The values `o` gives its key that are neither true nor false (nor a word its class also takes):
    a sweep's values, or the value in the composed config (an interpolation resolved)."""
    if o.is_sweep_override():
        sweep = o.value()
        values = list(o.sweep_iterator()) if isinstance(sweep, ChoiceSweep | RangeSweep) else []
    else:
        values = [OmegaConf.select(config, o.key_or_group, default=o.value(), throw_on_resolution_failure=False)]
    return [v for v in values if not isinstance(v, bool) and v not in ALSO_VALID.get(o.key_or_group, ())]


@lru_cache(maxsize=32)
def boolean_keys(config_name: str, groups: tuple[str, ...]) -> frozenset[str]:
    """The keys whose value is true or false in config `config_name` with these group choices, and
    no other override: what each key is before the command line sets it."""
    defaults = compose(config_name=config_name, overrides=list(groups))
    return frozenset(boolean_paths(OmegaConf.to_container(defaults, resolve=False)))


def boolean_paths(node: object, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from boolean_paths(value, f"{prefix}{key}.")
    elif isinstance(node, bool):
        yield prefix.removesuffix(".")


def boolean_names(sources: ListConfig | None) -> frozenset[str] | None:
    """The last part of each key that is true or false in a YAML file of these config sources
    (`hydra.runtime.config_sources`): a key of `boolean_keys` ends in one of them. None where a source
    cannot be read: then only composing tells."""
    if not sources:
        return None
    names: set[str] = set()
    for source in sources:
        if source.schema == "structured":
            continue  # Hydra's and its launchers' schemas: they go under `hydra.`, whose keys are not checked
        if source.schema not in ("file", "pkg"):
            return None
        try:
            for text in yaml_texts(Path(source.path) if source.schema == "file" else files(source.path)):
                if not yaml_names(yaml.compose(text, Loader=YAML_LOADER), names):
                    return None
        except (OSError, ValueError, yaml.YAMLError):  # a file that cannot be read proves nothing
            return None
    return frozenset(names)


def yaml_texts(folder: Traversable) -> Iterator[str]:
    """Every YAML file under `folder`, not only those a run composes: which ones it does is the
    defaults lists' to tell (.yml too: Hydra reads it under version_base 1.1)."""
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from yaml_texts(entry)
        elif entry.name.endswith((".yaml", ".yml")):
            yield entry.read_text("utf-8")


def yaml_names(root: yaml.Node | None, names: set[str]) -> bool:
    """Adds the key of each boolean value of one YAML document (true and false, and yes, on, !!bool:
    YAML reads those as booleans too), in lists as well (an anchored mapping can be merged into
    another: `<<: *defaults`). False for a boolean whose key may read as another name in the config
    (a number or a bool: `1: true`)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:  # an alias is the node it names: read once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if value.tag == BOOL_TAG:
                    if key.tag != STR_TAG or key.value[:1] in tuple("+-.0123456789"):
                        return False
                    names.add(key.value.rpartition(".")[2])
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return True

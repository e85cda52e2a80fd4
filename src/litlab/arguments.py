"""The keyword arguments a class takes, as config checks read them (data.*, model.* and evaluate's data overrides)."""

import inspect
from typing import get_args, get_origin, get_type_hints

from typing_extensions import Unpack


def accepted_keys(cls: type) -> list[str] | None:
    """The keyword arguments `cls` takes: its named parameters and those of a `**shared: Unpack[Args]`
    (litlab's ModelArgs, DataArgs); None for an open `**kwargs`."""
    params = inspect.signature(cls).parameters
    names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    rest = next((p for p in params.values() if p.kind is p.VAR_KEYWORD), None)
    if rest is None:
        return names
    unpacked = get_type_hints(cls.__init__, include_extras=True).get(rest.name)  # type: ignore[misc]
    if get_origin(unpacked) is not Unpack:
        return None
    return [*names, *get_type_hints(get_args(unpacked)[0])]

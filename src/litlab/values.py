"""What a config value is, as litlab's checks read it. Python counts YAML's true and false as the
integers 1 and 0 (bool is a subclass of int), so `isinstance(v, int)` alone would take
`seed=true` for a seed and `port=true` for port 1: every check of a number asks here."""

from typing import TypeGuard


def is_int(value: object) -> TypeGuard[int]:
    """An integer, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, and not a bool (NaN is a number: range checks refuse it)."""
    return isinstance(value, int | float) and not isinstance(value, bool)

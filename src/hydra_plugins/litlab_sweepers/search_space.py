"""The Optuna sweeper's search space: hydra-optuna-sweeper's syntax (`interval(a, b)`, `tag(log,
interval(a, b))`, `choice(...)`, `range(...)`) as Optuna distributions, and a trial's values back
as override text. optuna is imported only once a search starts (Hydra imports every plugin module)."""

from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from litlab.errors import UserError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def as_text(value: Any) -> str:
    """A value as an override writes it: lists as `[64,64]`, dicts as `{a:1}`, numbers in full precision."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(as_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{as_text(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, float) else str(value)


def as_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's parameters as the overrides that give them."""
    return [f"{k}={as_text(v)}" for k, v in params.items()]


def distribution(override: Override) -> "BaseDistribution":
    """The Optuna distribution of a sweep override: interval -> float (int with int(interval(...)),
    whose ends Hydra then parses as ints), log-scaled with tag(log, ...); choice -> categorical;
    range -> int with its step."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        start, end = sweep.start, sweep.end
        assert start is not None and end is not None  # the grammar requires both ends
        if isinstance(start, int) and isinstance(end, int):
            return IntDistribution(start, end, log=log_scale)
        return FloatDistribution(float(start), float(end), log=log_scale)
    if isinstance(sweep, ChoiceSweep):
        # Optuna stores categories as str/int/float/bool/None: other values (lists) by their text.
        return CategoricalDistribution(
            [v if isinstance(v, str | int | float | bool) else as_text(v) for v in sweep.list]
        )
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step
        if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
            high = start + (stop - 1 - start) // step * step  # range() excludes stop
            return IntDistribution(start, high, step=step)
        return CategoricalDistribution([float(v) for v in override.sweep_iterator()])  # type: ignore[arg-type]
    raise UserError(
        f"{override.input_line}: not a search space; use interval(a, b), tag(log, interval(a, b)), choice(...) "
        "or range(...)"
    )

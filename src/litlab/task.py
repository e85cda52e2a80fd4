"""The three learning tasks a dataset can declare, and what follows from each."""

from enum import StrEnum


class Task(StrEnum):
    """What the target is. The DataModule decides it; models, metrics and the monitored metric follow."""

    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"

    @property
    def is_classification(self) -> bool:
        return self is not Task.REGRESSION

    @property
    def default_monitor(self) -> tuple[str, str]:
        """(metric name, mode) that checkpointing and early stopping watch unless told otherwise."""
        return ("val/mse", "min") if self is Task.REGRESSION else ("val/acc", "max")

    @classmethod
    def parse(cls, value: str) -> "Task":
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise ValueError(f"task={value!r} is not a task; valid tasks are: {valid}") from None

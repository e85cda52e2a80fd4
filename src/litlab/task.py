"""The three learning tasks a dataset can declare, and what follows from each."""

from enum import StrEnum

from litlab.errors import UserError


class Task(StrEnum):
    """What the target is. The DataModule decides it; models and metrics follow."""

    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"

    @property
    def is_classification(self) -> bool:
        return self is not Task.REGRESSION

    @classmethod
    def parse(cls, value: str) -> "Task":
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise UserError(f"task={value!r} is not a task; valid tasks are: {valid}") from None

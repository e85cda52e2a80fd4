"""The three learning tasks a dataset can declare, and what follows from each; the two kinds of input."""

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


class InputKind(StrEnum):
    """What one input is: a row of features, or an image."""

    TABLE = "table"  # (F,) features
    IMAGE = "image"  # (C, H, W) pixels

    @property
    def dims(self) -> int:
        """The number of dimensions of one input."""
        return 1 if self is InputKind.TABLE else 3

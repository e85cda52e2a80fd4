"""evaluate.py's record in its run dir, `evaluation.json`: what was evaluated and every number of
its report. Its own name: a training run's record (metrics.json, litlab.files.run_record) says how
a training ended, this one what a checkpoint scores on one split."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litlab import files

EVALUATION = "evaluation.json"


@dataclass(frozen=True)
class EvaluationRecord:
    """The checkpoint, the split, Lightning's metrics on it (under the split's name, as a training
    run records its test metrics), and the report: its page, its TensorBoard event file, its numbers."""

    ckpt_path: str
    split: str  # test or val
    metrics: dict[str, float]  # Lightning's: test/loss, test/acc, ...
    report_path: str  # report.md
    tensorboard: str  # the report's event file
    scalars: dict[str, float]  # the report's numbers: acc, f1_macro, ece, ..., r2, temperature, ...
    status: str = "completed"

    def to_json(self) -> dict[str, Any]:
        report = {"path": self.report_path, "tensorboard": self.tensorboard, "metrics": self.scalars}
        return {"status": self.status, "ckpt_path": self.ckpt_path, "split": self.split, self.split: self.metrics,
                "report": report}  # fmt: skip

    def write(self, run_dir: str | Path) -> Path:
        """evaluation.json in `run_dir`, written whole; its path."""
        path = Path(run_dir) / EVALUATION
        files.write_json(path, self.to_json())
        return path

"""A run's own record: `metrics.json` in its run dir, as one typed value.

How the run ended (`status`), its final metrics, the best checkpoint, how long it took and where
its numbers came from. Written by the training job, by the job wrapper when a run fails or is
interrupted, and by a range test that only searched; read by resume, the checkpoint store, the
sweep report, TensorBoard's and MLflow's views of a run. Written whole (litlab.files). Any run dir
litlab wrote reads back, older ones included: keys this version does not know are kept (`extra`),
keys a record lacks take their defaults. A file that is not a record is an UnreadableRecord.

Example::

    record = RunRecord.read(run_dir)
    if record.finished:
        print(record.best_ckpt, record.test)
"""

import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from litlab import files

RECORD = "metrics.json"  # a run dir's record
UNKNOWN = "unknown"  # the status of a record that states none (litlab's always do)
FINISHED = ("completed", "pruned")  # statuses of a run that ran to its end (a pruned trial: the search stopped it)

Metrics = dict[str, float]  # `val/loss`, `test/acc`, ... as Lightning logged them


class UnreadableRecord(ValueError):
    """A record file that is not JSON, or not a run's record (a list, a status that is not text...)."""


@dataclass(frozen=True)
class RunRecord:
    """One run's record. The fields are in the order metrics.json lists them; a field that is None
    (or `val`, `test` unset) is left out of the file, except the facts in NULLS.

    - every record: `status` (completed, pruned, failed, interrupted), `wall_time_s`, `overrides`
      (the command line's), `environment` (host, pid, placement);
    - a failed run: `error` (one line) and its `traceback`;
    - an interrupted one: the `signal`, `epochs_completed`, the `checkpoint` saved when the signal
      came, the `last_ckpt` of the last completed epoch and the `resume` command;
    - a trained one: `optimized_metric` (what a sweeper optimizes: the `monitor`ed metric of the best
      checkpoint; None for a pruned trial), `pruned_at_epoch`, `mode`, the `val` and `test` metrics,
      `test_intervals` (litlab.evaluation.test_intervals),
      `best_ckpt`, `resumed_from`, `epochs`, `steps`, `steps_per_call`, `fit_time_s`, `world_size`,
      `provenance` (litlab.run.provenance), `hparams` and the `tensorboard` dir where logged;
    - a range test that only searched: `lr_find` (its suggestions and override).
    """

    status: str  # completed, pruned, failed, interrupted
    error: str | None = None
    traceback: str | None = None
    signal: str | None = None
    epochs_completed: int | None = None
    checkpoint: str | None = None
    last_ckpt: str | None = None
    resume: str | None = None
    optimized_metric: float | None = None
    pruned_at_epoch: int | None = None
    lr_find: dict[str, Any] | None = None
    monitor: str | None = None
    mode: str | None = None
    val: Metrics | None = None
    test: Metrics | None = None
    test_intervals: dict[str, list[float]] | None = None  # bootstrap 95% [low, high] of headline test metrics
    best_ckpt: str | None = None
    resumed_from: str | None = None
    epochs: int | None = None
    steps: int | None = None  # optimizer steps: under DDP each rank's, on its shard
    steps_per_call: int | None = None  # what model.steps_per_call=auto chose
    wall_time_s: float | None = None
    fit_time_s: float | None = None  # trainer.fit alone: no imports, data loading or testing
    overrides: list[str] = field(default_factory=list)
    world_size: int | None = None
    environment: dict[str, str | int] | None = None
    provenance: dict[str, Any] | None = None
    hparams: dict[str, Any] | None = None
    tensorboard: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of another version, kept as they were

    @property
    def finished(self) -> bool:
        """The run ran to its end."""
        return self.status in FINISHED

    @property
    def metrics(self) -> Metrics:
        """The final val and test metrics together."""
        return {**(self.val or {}), **(self.test or {})}

    @property
    def best_checkpoint_name(self) -> str | None:
        """The file name of the best checkpoint, which stays valid when the run dir is moved."""
        return Path(self.best_ckpt).name if self.best_ckpt else None

    @staticmethod
    def path(run_dir: str | Path) -> Path:
        return Path(run_dir) / RECORD

    @classmethod
    def exists(cls, run_dir: str | Path) -> bool:
        return cls.path(run_dir).exists()

    @classmethod
    def read(cls, run_dir: str | Path) -> "RunRecord":
        """The record of `run_dir`: FileNotFoundError where it has none, UnreadableRecord where its
        file is not one."""
        return cls.load(cls.path(run_dir))

    @classmethod
    def find(cls, run_dir: str | Path) -> "RunRecord | None":
        """The record of `run_dir`; None where it has none or it cannot be read."""
        try:
            return cls.read(run_dir)
        except (OSError, UnreadableRecord):
            return None

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        """The record in file `path` (metrics.json, or one set aside under another name)."""
        try:
            value = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as e:
            raise UnreadableRecord(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        return cls.from_json(value)

    @classmethod
    def from_json(cls, value: object) -> "RunRecord":
        """A record from its JSON form; UnreadableRecord where a key it knows has the wrong type."""
        if not isinstance(value, dict):
            raise UnreadableRecord("not a job's record (an object with status, overrides, val, test)")
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        for key, entry in known.items():
            if key in value and not fits(value[key], entry.type):
                raise UnreadableRecord(f"not a job's record: its {key} is {type(value[key]).__name__}")
        given = {k: v for k, v in value.items() if k in known}
        extra = {k: v for k, v in value.items() if k not in known}
        return cls(**{"status": UNKNOWN, **given}, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: the fields in order, without those not recorded (see NULLS)."""
        entry = asdict(self)
        extra = entry.pop("extra")
        kept = {k: v for k, v in entry.items() if v is not None or entry.get(NULLS.get(k, "")) is not None}
        return {**kept, **extra}

    def write(self, run_dir: str | Path) -> Path:
        """metrics.json in `run_dir`, written whole; its path."""
        path = self.path(run_dir)
        files.write_json(path, self.to_json())
        return path


# Facts a kind of record always states, null when unknown, each with the field that marks that
# kind: a run with metrics states its optimized metric; a trained run its best checkpoint and
# what it resumed from; an interrupted run what it saved and how to resume it.
NULLS = {"optimized_metric": "val", "best_ckpt": "monitor", "resumed_from": "monitor",
         "epochs_completed": "signal", "checkpoint": "signal", "last_ckpt": "signal", "resume": "signal"}  # fmt: skip


def fits(value: object, annotation: object) -> bool:
    """`value` (as JSON gave it) has the type of a field annotated `annotation` (`X | None`,
    `dict[...]`, `list[...]`, str, int, float); a float field takes a whole number too."""
    if isinstance(annotation, types.UnionType):
        return any(fits(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    kind = typing.get_origin(annotation) or annotation
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(kind, type) and isinstance(value, kind)

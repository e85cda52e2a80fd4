"""The jobs of a sweep dir as the report's rows: each job's record (litlab.files.run_record) and
overrides, and the jobs of the sweep's plan that never started (litlab.sweeps.plan). A record that
litlab did not write is one line naming it."""

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from litlab.errors import UserError
from litlab.files.run_record import RECORD, RunRecord, UnreadableRecord
from litlab.hydra_job import parse_overrides
from litlab.sweeps.plan import read_plan

# How the sweep was launched and where an Optuna trial reports (optuna.*): not parameters of it.
NOT_PARAMS = ("hparams_search", "optuna.")


def natural(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def read_job(job_dir: Path) -> dict:
    """One row: job name, status, overridden values, final metrics, wall time, error."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    record = read_record(job_dir) if RunRecord.exists(job_dir) else RunRecord("unfinished")
    overrides = record.overrides
    if not overrides and overrides_file.exists():
        overrides = read_overrides(overrides_file)
    return {
        "job": job_dir.name,
        "status": record.status,
        "params": {k: v for k, v in parse_overrides(overrides).items() if not k.startswith(NOT_PARAMS)},
        "metrics": record.metrics,
        "monitor": record.monitor,
        "mode": record.mode,
        "wall_time_s": record.wall_time_s,
        "error": record.error or interrupt_note(record) or prune_note(record),
    }


def read_record(job_dir: Path) -> RunRecord:
    """A job's record, which litlab writes whole: anything else was written by something else."""
    try:
        return RunRecord.read(job_dir)
    except (OSError, UnreadableRecord) as e:
        raise unreadable(RunRecord.path(job_dir), e) from None


def read_overrides(path: Path) -> list[str]:
    """A started job's .hydra/overrides.yaml, written by Hydra."""
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise unreadable(path, e) from None
    if not isinstance(overrides, list):
        raise unreadable(path, ValueError("not a list of overrides"))
    return [str(o) for o in overrides]


def unreadable(path: Path, error: Exception) -> UserError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UserError(
        f"{path} cannot be read: {reason}; move that job's dir out of the sweep dir (or restore the file) and "
        "run the report again"
    )


def planned_job(job: str, overrides: list[str]) -> dict:
    """A row for a job of the sweep's plan that never started (litlab.sweeps.plan)."""
    params = {k: v for k, v in parse_overrides(overrides).items() if not k.startswith(NOT_PARAMS)}
    return {"job": job, "status": "not started", "params": params, "metrics": {}, "monitor": None, "mode": None,
            "wall_time_s": None, "error": f"never started: {' '.join(overrides)}"}  # fmt: skip


def interrupt_note(record: RunRecord) -> str:
    """What an interrupted job's record says, in a line: the signal, the epochs, how to resume."""
    if record.status != "interrupted":
        return ""
    resume = f"; resume: {record.resume}" if record.resume else ""
    return f"interrupted by {record.signal} after {record.epochs_completed} epoch(s){resume}"


def prune_note(record: RunRecord) -> str:
    """Where an Optuna trial was pruned (litlab.sweeps.pruning): its epoch and monitored value then."""
    if record.status != "pruned":
        return ""
    value = (record.val or {}).get(record.monitor or "")
    return f"pruned at epoch {record.pruned_at_epoch} ({record.monitor}={value})"


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The dirs of `sweep_dir` that a job wrote (its record, or Hydra's .hydra/ of a job that started)."""
    return [p for p in sweep_dir.iterdir() if RunRecord.exists(p) or (p / ".hydra").is_dir()]


def job_rows(sweep_dir: Path) -> list[dict]:
    """Every job of the sweep dir and of its plan, by job number."""
    if not sweep_dir.is_dir():
        what = "a file, not a dir" if sweep_dir.exists() else "no such dir"
        raise UserError(f"{sweep_dir}: {what}; give the dir of a multirun or an Optuna sweep")
    dirs = job_dirs(sweep_dir)
    plan = read_plan(sweep_dir)
    if not dirs and not plan:
        raise UserError(
            f"{sweep_dir} holds no job dirs (subdirs with {RECORD} or .hydra/); give the dir of a "
            "multirun or an Optuna sweep, e.g. logs/train/multiruns/<date>"
        )
    records = [read_job(d) for d in dirs]
    seen = {r["job"] for r in records}
    records += [planned_job(job, overrides) for job, overrides in plan.items() if job not in seen]
    return sorted(records, key=lambda r: natural(r["job"]))

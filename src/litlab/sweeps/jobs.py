"""The jobs of a sweep dir as the report's rows: each job's record (litlab.files.run_record) and
overrides, the jobs of the sweep's plan that never started (litlab.sweeps.plan), and for an Optuna
search the study's trials that ran in other workers' dirs. A record that litlab did not write is one
line naming it."""

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from omegaconf import OmegaConf

from litlab.errors import UserError
from litlab.files.run_record import RECORD, RunRecord, UnreadableRecord
from litlab.hydra_job import parse_overrides
from litlab.sweeps.plan import read_plan
from litlab.sweeps.study import read_study_file, stored_study

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

# How the sweep was launched and where an Optuna trial reports (optuna.*): not parameters of it.
NOT_PARAMS = ("hparams_search", "optuna.")


def params_of(overrides: list[str]) -> dict[str, str]:
    """A job's overrides as its parameters: key -> value, less how it was launched (NOT_PARAMS)."""
    return {k: v for k, v in parse_overrides(overrides).items() if not k.startswith(NOT_PARAMS)}


def first_line(error: BaseException) -> str:
    """An error's first line, or its type where it has no message."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


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
        "params": params_of(overrides),
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
    reason = first_line(error)
    return UserError(
        f"{path} cannot be read: {reason}; move that job's dir out of the sweep dir (or restore the file) and "
        "run the report again"
    )


def planned_job(job: str, overrides: list[str]) -> dict:
    """A row for a job of the sweep's plan that never started (litlab.sweeps.plan)."""
    params = params_of(overrides)
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


def started(job_dir: Path) -> bool:
    """A job wrote `job_dir`: its record, or Hydra's .hydra/ of a job that started."""
    return RunRecord.exists(job_dir) or (job_dir / ".hydra").is_dir()


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The dirs of `sweep_dir` that a job wrote."""
    return [p for p in sweep_dir.iterdir() if started(p)]


# A trial's state as the status of its job.
TRIAL_STATUS = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "unfinished",
                "WAITING": "not started"}  # fmt: skip


def other_trials(sweep_dir: Path, seen: set[str]) -> list[dict]:
    """The trials of `sweep_dir`'s Optuna study not in `seen` (jobs named by trial number): other
    workers ran them in their own sweep dirs. Each read from its job dir where this machine sees it,
    else from the study (its parameters, state and value). A study that cannot be read is a warning."""
    where = read_study_file(sweep_dir)
    if where is None:  # a grid sweep, or a search in memory
        return []
    from sqlalchemy.exc import SQLAlchemyError

    try:
        study = stored_study(*where)
    except (SQLAlchemyError, KeyError, OSError, ImportError, ValueError) as e:  # a database down, a file gone
        log.warning("study %r in %s cannot be read (%s): only the jobs in %s are reported", where[0], where[1],
                    first_line(e), sweep_dir)  # fmt: skip
        return []
    return [trial_row(study, t) for t in study.get_trials(deepcopy=False) if str(t.number) not in seen]


def trial_row(study: "optuna.Study", trial: "optuna.trial.FrozenTrial") -> dict:
    """One trial of another worker: its job dir's row, or what the study knows of it."""
    job_dir = Path(str(trial.user_attrs.get("job_dir", "")))
    if job_dir.name and started(job_dir):
        return read_job(job_dir)
    overrides = [*trial.user_attrs.get("searched_overrides", []), *trial.user_attrs.get("fixed_overrides", [])]
    names = study.metric_names if len(study.directions) == 1 else None
    metric = names[0] if names else None
    mode = "max" if study.directions[0].name == "MAXIMIZE" else "min"
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {
        "job": str(trial.number),
        "status": TRIAL_STATUS[trial.state.name],
        "params": params_of(overrides),
        "metrics": {metric: trial.value} if metric and trial.value is not None else {},
        "monitor": metric,
        "mode": mode,
        "wall_time_s": duration,
        "error": f"{job_dir if job_dir.name else 'its job dir'} is not on this machine: read from the study",
    }


def job_rows(sweep_dir: Path) -> list[dict]:
    """Every job of the sweep dir and of its plan, by job number."""
    if not sweep_dir.is_dir():
        what = "a file, not a dir" if sweep_dir.exists() else "no such dir"
        raise UserError(f"{sweep_dir}: {what}; give the dir of a multirun or an Optuna sweep")
    records = [read_job(d) for d in job_dirs(sweep_dir)]
    seen = {r["job"] for r in records}
    records += [planned_job(job, overrides) for job, overrides in read_plan(sweep_dir).items() if job not in seen]
    records += other_trials(sweep_dir, seen)
    if not records:
        raise UserError(
            f"{sweep_dir} holds no job dirs (subdirs with {RECORD} or .hydra/); give the dir of a "
            "multirun or an Optuna sweep, e.g. logs/train/multiruns/<date>"
        )
    return sorted(records, key=lambda r: natural(r["job"]))

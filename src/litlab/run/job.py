"""One job of a run or a sweep, with its outcome recorded, failures and interrupts included.

A failed job leaves its record (metrics.json: litlab.files.run_record) with `status: failed`,
the error and its traceback in its run dir, and, inside a multirun, a line in the sweep's
`sweep.log`. A single run then exits: with one line and code 2 for a user error
(litlab.errors), else with the traceback.
In a multirun the error is raised again: Hydra's launcher records the job as failed and goes
on with the others (see hydra_plugins/litlab_sweepers and litlab.sweeps.sweep_end).

An interrupted job (SIGINT, SIGTERM: litlab.run.interrupts) leaves `status: interrupted`, the
epochs it completed and its checkpoints, and exits with 128 + the signal's number.
"""

import logging
import os
import shlex
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from litlab import files
from litlab.checkpoints import store
from litlab.compat import global_rank
from litlab.errors import UserError, exit_with, wants_traceback
from litlab.files import DiskFull, disk_full, is_disk_full
from litlab.files.run_record import RunRecord
from litlab.hydra_job import in_multirun, job_overrides
from litlab.run.interrupts import Interrupted, signals_raise

log = logging.getLogger(__name__)

SWEEP_LOG = "sweep.log"


def run_recorded(job: Callable[[DictConfig], dict], cfg: DictConfig) -> dict:
    """`job(cfg)`, whose record it writes on failure or interrupt; returns what `job` returns (its
    record, RunRecord.to_json())."""
    start = time.perf_counter()
    try:
        with signals_raise():
            metrics = job(cfg)
    except (Interrupted, KeyboardInterrupt) as e:
        stop = e if isinstance(e, Interrupted) else Interrupted("SIGINT")
        record_interrupt(cfg, stop, time.perf_counter() - start)
        raise SystemExit(stop.exit_code) from None
    except Exception as e:
        failure = disk_full(e) if is_disk_full(e) and not isinstance(e, DiskFull) else e
        error = f"{type(failure).__name__}: {failure}"
        if global_rank() == 0:
            record_failure(Path(cfg.paths.output_dir), error, time.perf_counter() - start)
        if isinstance(failure, UserError) and not in_multirun() and not wants_traceback(cfg.extras.traceback):
            exit_with(failure)
        log.error("job failed: %s", error)
        if failure is not e:
            raise failure from e
        raise
    if global_rank() == 0:
        note_outcome(RunRecord.from_json(metrics))
    return metrics


def note_outcome(record: RunRecord) -> None:
    """A finished job's line in sweep.log: its optimized metric, or where its trial was pruned."""
    value = record.optimized_metric
    detail = f"{record.monitor}={value:.6g}" if value is not None else ""
    if record.status == "pruned":
        detail = f"at epoch {record.pruned_at_epoch}"
    note_in_sweep_log(record.status, detail)


def record_failure(output_dir: Path, error: str, wall_time_s: float) -> None:
    """The record with `status: failed` and a sweep.log line, where the disk still takes them."""
    try:
        failed = RunRecord("failed", error=error, traceback=traceback.format_exc())
        record_unfinished(output_dir, failed, wall_time_s)
        note_in_sweep_log("failed", error)
    except (OSError, DiskFull) as e:  # a full disk: the error itself is what the user sees
        log.warning("the failure could not be recorded in %s: %s", output_dir, e)


def record_interrupt(cfg: DictConfig, stop: Interrupted, wall_time_s: float) -> None:
    """The record of an interrupted run: the signal, the epochs done, the checkpoints to resume from."""
    output_dir = Path(cfg.paths.output_dir)
    last = store.last_checkpoint(output_dir)
    # The run dir resumes from last.ckpt, or before the first epoch ended from interrupted.ckpt.
    resume = resume_command(output_dir) if last is not None or stop.checkpoint is not None else None
    detail = (
        f"by {stop.signal_name} after {stop.epochs_completed} epoch(s)" if stop.epochs_completed is not None else ""
    )
    if global_rank() == 0:
        interrupted = RunRecord(
            "interrupted",
            signal=stop.signal_name,
            epochs_completed=stop.epochs_completed,
            checkpoint=stop.checkpoint,  # the state when the signal came, mid-epoch
            last_ckpt=str(last) if last is not None else None,  # the end of the last completed epoch
            resume=resume,
        )
        record_unfinished(output_dir, interrupted, wall_time_s)
        note_in_sweep_log("interrupted", detail)
    log.warning("interrupted %s; %s", detail or f"by {stop.signal_name}", resume or "no checkpoint to resume")


def resume_command(output_dir: Path) -> str:
    """The run's own command line, resuming from its dir (which a new run dir will not overwrite)."""
    # Not its Optuna trial (optuna.*): the sweep has told the study by then.
    kept = [o for o in job_overrides() if not o.startswith(("hydra.", "ckpt_path=", "optuna."))]
    return shlex.join(["litlab", "train", *kept, f"ckpt_path={output_dir}"])


def record_unfinished(output_dir: Path, outcome: RunRecord, wall_time_s: float) -> None:
    """The record of a run that did not complete (`outcome`, with its time, command line and
    machine), unless an earlier, finished run owns the dir."""
    if RunRecord.exists(output_dir):  # the error says so; keep that run's record
        return
    replace(outcome, wall_time_s=round(wall_time_s, 3), overrides=job_overrides(), environment=where_it_ran()).write(
        output_dir
    )


# What a cluster or launcher told the job about where it runs.
PLACEMENT = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_NODELIST",
             "SLURM_RESTART_COUNT")  # fmt: skip


def where_it_ran() -> dict[str, str | int]:
    """The host, the process and the placement variables that are set (which GPUs, which SLURM job)."""
    placement = {k: os.environ[k] for k in PLACEMENT if k in os.environ}
    return {"host": socket.gethostname(), "pid": os.getpid(), **placement}


def note_in_sweep_log(status: str, detail: str) -> None:
    """One line per finished job in <sweep dir>/sweep.log; nothing outside a multirun."""
    if not in_multirun():
        return
    hc = HydraConfig.get()
    line = f"{datetime.now():%Y-%m-%d %H:%M:%S} job {hc.job.num} {status} [{' '.join(job_overrides())}] {detail}"
    files.append_line(Path(hc.sweep.dir) / SWEEP_LOG, line)  # whole, under a lock: parallel jobs append

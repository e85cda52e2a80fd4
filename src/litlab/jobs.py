"""One job of a run or a sweep, with its outcome recorded, failures included.

A failed job leaves `metrics.json` with `status: failed`, the error and its traceback in
its run dir, and, inside a multirun, a line in the sweep's `sweep.log`. The error is then
raised again: a single run exits nonzero with the traceback, and in a multirun Hydra's
launcher records the job as failed and goes on with the others (see
hydra_plugins/litlab_sweepers and litlab.sweep_callback for how the sweep ends).
"""

import json
import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

log = logging.getLogger(__name__)

SWEEP_LOG = "sweep.log"


def run_recorded(job: Callable[[DictConfig], dict], cfg: DictConfig) -> dict:
    """`job(cfg)`, whose metrics.json it completes on failure; returns what `job` returns."""
    start = time.perf_counter()
    try:
        metrics = job(cfg)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        if rank_zero_only.rank == 0:
            record_failure(Path(cfg.paths.output_dir), error, traceback.format_exc(), time.perf_counter() - start)
            note_in_sweep_log("failed", error)
        log.error("job failed: %s", error)
        raise
    if rank_zero_only.rank == 0:
        value = metrics.get("optimized_metric")
        note_in_sweep_log("completed", f"{metrics.get('monitor')}={value:.6g}" if value is not None else "")
    return metrics


def record_failure(output_dir: Path, error: str, trace: str, wall_time_s: float) -> None:
    path = output_dir / "metrics.json"
    if path.exists():  # an earlier, finished run owns this dir (the error says so): keep its record
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "status": "failed",
        "error": error,
        "traceback": trace,
        "wall_time_s": round(wall_time_s, 3),
        "overrides": job_overrides(),
    }
    path.write_text(json.dumps(record, indent=2))


def job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def note_in_sweep_log(status: str, detail: str) -> None:
    """One line per finished job in <sweep dir>/sweep.log; nothing outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hc = HydraConfig.get()
    line = f"{datetime.now():%Y-%m-%d %H:%M:%S} job {hc.job.num} {status} [{' '.join(job_overrides())}] {detail}"
    sweep_dir = Path(hc.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / SWEEP_LOG, "a") as f:  # one short append per job: safe with parallel launchers
        f.write(line.replace("\n", " ") + "\n")

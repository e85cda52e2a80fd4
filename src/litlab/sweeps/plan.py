"""A grid sweep's plan: every job it will run, with its overrides, written to the sweep dir before
the first job starts (sweep_plan.json). The report lists the jobs that never started from it, and
the same `-m` command run again on the same sweep dir skips the jobs that finished and runs the
rest (the interrupted ones resume in their own dirs: litlab.checkpoints.resume.rerun_checkpoint)."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from litlab import files
from litlab.errors import UserError

PLAN = "sweep_plan.json"


def write_plan(sweep_dir: Path, jobs: Sequence[Sequence[str]]) -> None:
    """Job number -> its overrides, for every job of the sweep, as Hydra numbers them."""
    files.write_json(sweep_dir / PLAN, {"jobs": {str(num): list(overrides) for num, overrides in enumerate(jobs)}})


def check_same_jobs(sweep_dir: Path, jobs: Sequence[Sequence[str]]) -> None:
    """A sweep dir is run again only by the command that made it: other jobs under the same numbers
    would be mixed with its finished ones."""
    before = read_plan(sweep_dir)
    for num, overrides in enumerate(jobs):
        if str(num) in before and before[str(num)] != list(overrides):
            raise UserError(
                f"hydra.sweep.dir={str(sweep_dir)!r} holds a sweep of other jobs (job {num} was "
                f"[{' '.join(before[str(num)])}], now [{' '.join(overrides)}]); give a new hydra.sweep.dir, "
                "or run that sweep's own command to finish it"
            )


def read_plan(sweep_dir: Path) -> dict[str, list[str]]:
    """The planned jobs of `sweep_dir` (job number -> overrides); empty for a sweep without a plan."""
    try:
        plan = json.loads((sweep_dir / PLAN).read_text())
    except (OSError, ValueError):
        return {}
    jobs = plan.get("jobs") if isinstance(plan, dict) else None  # another program's file: no plan of litlab's
    if not isinstance(jobs, dict) or not all(isinstance(v, list) for v in jobs.values()):
        return {}
    return {str(k): [str(o) for o in v] for k, v in jobs.items()}


def unfinished_runs(
    batch: Sequence[Sequence[str]], first_num: int, is_finished: Callable[[int, Sequence[str]], bool]
) -> list[tuple[int, list[Sequence[str]]]]:
    """The jobs of `batch` (numbered from `first_num`) still to run, as runs of consecutive job
    numbers: (the first one's number, their overrides). A launcher numbers the jobs it is given
    from its first, so a run with a finished job inside it is launched in two."""
    runs: list[tuple[int, list[Sequence[str]]]] = []
    for num, overrides in enumerate(batch, start=first_num):
        if is_finished(num, overrides):
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == num:
            runs[-1][1].append(overrides)
        else:
            runs.append((num, [overrides]))
    return runs

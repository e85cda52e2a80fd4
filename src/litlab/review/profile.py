"""`debug=profiler`: where a run's time goes, hook by hook.

Lightning's SimpleProfiler times every hook it wraps; printed whole, its report is about a
thousand lines. HookProfiler writes that report into the run dir, one file per stage
(`fit-profile.txt`, `validate-profile.txt`, `test-profile.txt`), and prints only the slowest
hooks of each stage.
"""

import logging
import math
import re
import time
from pathlib import Path

from lightning.pytorch.profilers import SimpleProfiler
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import override

from litlab import files

log = logging.getLogger(__name__)

# Actions that enclose the others: their time is the sum of the hooks they call, not a cost of their own.
ENCLOSING = ("run_training_epoch", "run_training_batch")


class HookProfiler(SimpleProfiler):
    """Lightning's SimpleProfiler (per-hook mean, calls, total and share of the stage's time),
    its report written whole to `<dirpath>/<stage>-profile.txt`, the `top` slowest hooks by total
    time printed. Each stage's report covers that stage only."""

    def __init__(self, dirpath: str, top: int = 10) -> None:
        super().__init__(dirpath=dirpath, extended=True)
        self.top = top
        self.stage = "run"

    @override
    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        super().setup(stage, local_rank, log_dir)
        self.stage = TrainerFn(stage).value  # fit, validate, test
        self.start_time = time.perf_counter()  # the share column: of this stage's time, not the process's

    @override
    def describe(self) -> None:
        if not self.recorded_durations:
            return
        rank = f"-rank{self.local_rank}" if self.local_rank else ""
        path = Path(str(self.dirpath)) / f"{self.stage}{rank}-profile.txt"
        files.write_text(path, self.summary())
        log.info("%s", self.slowest_lines(path))
        self.recorded_durations.clear()

    def slowest(self) -> list[tuple[str, float, int]]:
        """The `top` hooks by total seconds: (name, total s, calls)."""
        durations = {short(name): d for name, d in self.recorded_durations.items() if name not in ENCLOSING}
        totals = [(name, math.fsum(d), len(d)) for name, d in durations.items()]
        return sorted(totals, key=lambda t: t[1], reverse=True)[: self.top]

    def slowest_lines(self, path: Path) -> str:
        rows = self.slowest()
        width = max(len(name) for name, _, _ in rows)
        lines = [f"{self.stage}: the {len(rows)} slowest hooks (full report: {path})"]
        lines.append(f"  {'hook':<{width}}  {'total s':>8}  {'calls':>7}  {'mean ms':>9}")
        lines += [f"  {n:<{width}}  {t:8.3f}  {c:7d}  {1000 * t / c:9.3f}" for n, t, c in rows]
        return "\n".join(lines)


def short(action: str) -> str:
    """A hook's name without a callback's state key: `[Callback]BestCheckpoint{'monitor': ...}.setup`
    becomes `[Callback]BestCheckpoint.setup`."""
    return re.sub(r"\{.*\}", "", action)

"""Where a whole `python train.py` goes, from the command to its result: the interpreter, imports,
Hydra composition, data, fit, test, and the writing inside them (checkpoints, figures,
TensorBoard, the run's records).

    python scripts/benchmarks/run_split.py [--repeats 3] [OVERRIDES ...]

Each repeat runs the command twice, interleaved: once as it is, timed whole (the wall time a user
waits), and once under cProfile, from which each phase's seconds are read; `python -c pass` times
the interpreter alone. In the profiled run, the modules a run imports are imported first, timed
(imports), so that the phases after it do not carry the imports they would trigger; what is still
imported later is counted in the phase that imports it. A phase's seconds are the cumulative time
of the functions listed in PHASES; writing's are the time spent inside the listed files, entered
from outside them, and happen inside the phases (checkpoints in fit, figures in test), so they are
shown beside them, not added. cProfile slows Python-heavy code, so the profiled run takes longer
than the plain one: both totals are printed. Default overrides: a short MLP run on digits.
"""

import argparse
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ["model=mlp", "data=digits", "trainer.max_epochs=3"]
IMPORTED_FIRST = ["torch", "lightning", "pandas", "sklearn", "matplotlib.pyplot", "torch.utils.tensorboard",
                  "hydra", "litlab.run.commands", "litlab.run.train"]  # fmt: skip
# Run with cProfile: imports IMPORTED_FIRST (timed), then train.py as `python train.py ARGS` would.
DRIVER = """
import cProfile, runpy, sys, time
out, imports = sys.argv[1], sys.argv[2].split(",")
start = time.perf_counter()
for name in imports:
    __import__(name)
print(f"imported {time.perf_counter() - start}")
sys.argv = ["train.py", *sys.argv[3:]]
profile = cProfile.Profile()
try:
    profile.runcall(runpy.run_path, "train.py", run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
finally:
    profile.dump_stats(out)
"""
# phase: (file path ending, function name); each's cumulative time
PHASES = {
    "Hydra composition": [("hydra/_internal/config_loader_impl.py", "load_configuration")],
    "  of which the boolean settings' check (litlab.run.booleans)": [("litlab/run/booleans.py", "boolean_keys")],
    "data (read, split, scale, check)": [
        ("litlab/run/build.py", "build_datamodule"),
        ("litlab/run/build.py", "build_model"),
        ("litlab/run/train.py", "record_data_check"),
    ],
    "fit": [("lightning/pytorch/trainer/trainer.py", "fit")],
    "test (the best checkpoint's val and test)": [("litlab/run/train.py", "test_best")],
}
# writing: time inside these files (or functions), entered from outside them
WRITING = {
    "checkpoints (fsync'd whole)": ["litlab/checkpoints/io.py"],
    "figures": ["litlab/review/figures", "litlab/evaluation/figures.py"],
    "TensorBoard": ["torch/utils/tensorboard/", "litlab/review/tensorboard.py"],
    "records (config, metrics, data report)": ["litlab/files/"],
}


def cumulative(stats: pstats.Stats, path_end: str, name: str) -> float:
    return sum(v[3] for (path, _, fn), v in stats.stats.items() if fn == name and path.endswith(path_end))  # type: ignore[attr-defined]


def entered(stats: pstats.Stats, parts: list[str]) -> float:
    """Seconds spent in functions of files whose path contains one of `parts`, counted where they
    are called from a function outside those files (so nested calls count once)."""

    def inside(path: str) -> bool:
        return any(part in path for part in parts)

    total = 0.0
    for (path, _, _), (_, _, _, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if inside(path):
            total += sum(c[3] for (caller_path, _, _), c in callers.items() if not inside(caller_path))
    return total


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=1200)
    return time.perf_counter() - start, proc.stdout


def one_repeat(overrides: list[str], work: Path, i: int) -> dict[str, float]:
    run = [f"hydra.run.dir={work / f'plain_{i}'}", *overrides]
    row = {"whole run (no profiler)": timed([sys.executable, "train.py", *run])[0]}
    row["interpreter (python -c pass)"] = timed([sys.executable, "-c", "pass"])[0]
    profile = work / f"run_{i}.prof"
    profiled = [f"hydra.run.dir={work / f'profiled_{i}'}", *overrides]
    seconds, out = timed([sys.executable, "-c", DRIVER, str(profile), ",".join(IMPORTED_FIRST), *profiled])
    row["whole run (profiled)"] = seconds
    stats = pstats.Stats(str(profile))
    row["imports"] = float(out.split("imported ")[1].split()[0])
    row["  imports left for later (inside the phases below)"] = cumulative(stats, "_bootstrap>", "_find_and_load")
    for phase, functions in PHASES.items():
        row[phase] = sum(cumulative(stats, path, name) for path, name in functions)
    for what, parts in WRITING.items():
        row[f"  of which writing: {what}"] = entered(stats, parts)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help=f"train.py's overrides (default: {' '.join(DEFAULT)})")
    args = parser.parse_args()
    overrides = [*(args.overrides or DEFAULT), "logger=tensorboard", "extras.print_config=false"]
    with tempfile.TemporaryDirectory(prefix="litlab-run-split-") as work:
        timed([sys.executable, "train.py", f"hydra.run.dir={Path(work) / 'warm'}", *overrides])  # .pyc files
        rows = [one_repeat(overrides, Path(work), i) for i in range(args.repeats)]
    print(f"`python train.py {' '.join(overrides)}`, {args.repeats} repeats\n")
    print("| part | seconds, median (min-max) |\n| --- | --- |")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"| {key} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")


if __name__ == "__main__":
    main()

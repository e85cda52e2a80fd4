"""Wall time of one Optuna search budget run three ways: one worker; N workers (the same command
started N times on one study); one worker with `hydra.sweeper.n_jobs=N` on the parallel launcher.
Trials of uneven length (`trainer.max_epochs` is searched). The three arms run interleaved, in a
new order each round, with the same sampler seed per round. Prints each round's wall times and
trial counts, then the median ratio to one worker with its min and max.

    python scripts/benchmarks/workers_benchmark.py --rounds 3
    python scripts/benchmarks/workers_benchmark.py --workers 4 --trials 16 -- trainer.max_epochs='range(2,20)'
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
ARMS = ("one worker", "workers", "n_jobs")


def command(sweep_dir: Path, args: argparse.Namespace, seed: int, *more: str) -> list[str]:
    return [sys.executable, "train.py", "-m", args.search, f"hydra.sweep.dir={sweep_dir}", "logger=none",
            f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.sampler.seed={seed}", "hydra.sweeper.pruner=none",
            f"trainer.max_epochs={args.epochs}", *more, *args.overrides]  # fmt: skip


def run_arm(arm: str, sweep_dir: Path, args: argparse.Namespace, seed: int) -> dict:
    """One search, one of the three ways; its wall time and how many trials ended (best.yaml)."""
    parallel = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.workers}",
                f"hydra.sweeper.n_jobs={args.workers}"]  # fmt: skip
    copies = args.workers if arm == "workers" else 1
    cmd = command(sweep_dir, args, seed, *(parallel if arm == "n_jobs" else []))
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(copies)]  # fmt: skip
    codes = [proc.wait() for proc in procs]
    seconds = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"{arm}: exit codes {codes}: {' '.join(cmd)}")
    best = OmegaConf.load(sweep_dir / "best.yaml")
    return {"seconds": seconds, "trials": int(best.trials.total), "failed": int(best.trials.failed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", default="hparams_search=digits_mlp")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--epochs", default="range(1,13)", help="trainer.max_epochs, searched: uneven trials")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="more overrides for every search (after --)")
    args = parser.parse_args()
    print(f"{args.search}, {args.trials} trials, trainer.max_epochs={args.epochs}; N = {args.workers}")
    print(f"{'round':>5} " + " ".join(f"{arm + ' s':>14} {'trials':>6}" for arm in ARMS))
    ratios: dict[str, list[float]] = {"workers": [], "n_jobs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ARMS[r % 3 :] + ARMS[: r % 3]  # each arm first once every three rounds
            runs = {arm: run_arm(arm, Path(tmp) / f"{r}_{arm.replace(' ', '_')}", args, seed=r) for arm in order}
            for arm in ratios:
                ratios[arm].append(runs[arm]["seconds"] / runs["one worker"]["seconds"])
            print(f"{r:>5} " + " ".join(f"{runs[a]['seconds']:14.1f} {runs[a]['trials']:>6}" for a in ARMS))
    for arm, values in ratios.items():
        print(f"{arm} / one worker: median {statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]")


if __name__ == "__main__":
    main()

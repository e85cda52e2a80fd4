"""What pruning saves: the same Optuna search (same sampler seed, same number of trials) with
`hydra.sweeper.pruner=none` and with a pruner, run interleaved (none, pruned, pruned, none, ...),
once per seed. Prints each pair's wall time and best value, then the median ratio of times.

    python scripts/benchmarks/pruning_benchmark.py --seeds 1 2 3
    python scripts/benchmarks/pruning_benchmark.py --search hparams_search=mnist_cnn --trials 12 -- data.data_dir=DIR
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


def search(sweep_dir: Path, args: argparse.Namespace, seed: int, pruner: str) -> dict:
    """One search as `python train.py -m`; its wall time, best value and trial counts (best.yaml)."""
    cmd = [sys.executable, "train.py", "-m", args.search, f"hydra.sweep.dir={sweep_dir}",
           f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.sampler.seed={seed}",
           f"hydra.sweeper.pruner={pruner}", *args.overrides]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    best = OmegaConf.load(sweep_dir / "best.yaml")
    return {"seconds": seconds, "best": float(best.value), "pruned": int(best.trials.pruned)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", default="hparams_search=digits_mlp")
    parser.add_argument("--pruner", default="median")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("overrides", nargs="*", help="more overrides for every search (after --)")
    args = parser.parse_args()
    print(f"{args.search}, {args.trials} trials; none vs {args.pruner}")
    header = f"{'seed':>4} {'none s':>8} {'pruned s':>9} {'ratio':>6} {'best none':>10} {'best pruned':>12}"
    print(header, f"{'# pruned':>8}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(args.seeds):
            arms = ["none", args.pruner] if i % 2 == 0 else [args.pruner, "none"]  # A B, B A, ...
            runs = {arm: search(Path(tmp) / f"{arm}_{seed}", args, seed, arm) for arm in arms}
            plain, pruned = runs["none"], runs[args.pruner]
            ratios.append(pruned["seconds"] / plain["seconds"])
            print(f"{seed:>4} {plain['seconds']:8.1f} {pruned['seconds']:9.1f} {ratios[-1]:6.2f} "
                  f"{plain['best']:10.4f} {pruned['best']:12.4f} {pruned['pruned']:>8}")  # fmt: skip
    saved = 1 - statistics.median(ratios)
    print(f"time with pruning / without: median {statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
          f" -> {saved:.0%} saved")  # fmt: skip


if __name__ == "__main__":
    main()

"""How long the command line takes to answer when nothing trains: `litlab --help` (the verbs),
`litlab train --help`, `python train.py --help`, `--cfg job`, `--info` and `evaluate.py --help`,
against `python -c "import hydra"` (the floor: Hydra itself), and what a training run pays before
it starts: `import torch` (all a plain PyTorch script needs) and `import lightning`. Runs are
interleaved (A B C ... A B C ...) so that machine noise hits all alike.

    python scripts/benchmarks/cli_startup.py --repeats 7
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LITLAB = str(Path(sys.executable).with_name("litlab"))  # the console script pip installs beside python
COMMANDS = {
    "import hydra": [sys.executable, "-c", "import hydra"],
    "litlab --help": [LITLAB, "--help"],
    "litlab train --help": [LITLAB, "train", "--help"],
    "train.py --help": [sys.executable, "train.py", "--help"],
    "train.py --cfg job": [sys.executable, "train.py", "--cfg", "job"],
    "train.py --info": [sys.executable, "train.py", "--info"],
    "evaluate.py --help": [sys.executable, "evaluate.py", "--help"],
    "import torch": [sys.executable, "-c", "import torch"],
    "import lightning": [sys.executable, "-c", "import lightning"],
}


def seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # one warm-up each: the first run compiles .pyc files
        seconds(cmd)
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(seconds(cmd))
    floor = times["import hydra"]
    print(f"{'command':<22} {'median s':>9} {'min':>6} {'max':>6}   minus 'import hydra' (median of pairs)")
    for name, ts in times.items():
        extra = statistics.median(t - f for t, f in zip(ts, floor, strict=True))
        print(f"{name:<22} {statistics.median(ts):9.2f} {min(ts):6.2f} {max(ts):6.2f}   {extra:+.2f}")


if __name__ == "__main__":
    main()

"""Tables that grow: litlab's logistic regression on a generated CSV against the scikit-learn
script a user would write, at several sizes, interleaved.

    python scripts/benchmarks/table_benchmark.py [--rows 200000,1000000] [--columns 30] [--repeats 3]

Each size: a seeded table of `--columns` numeric features and a binary target, written once.
(a) `python train.py data=csv model=logistic_regression` on it: `wall_time_s` from its
metrics.json (the run itself, without Python's start-up and imports) and the process's peak memory;
(s) the scikit-learn script: pandas read, stratified 70/15/15 split, StandardScaler,
LogisticRegression(), test accuracy, timed as a whole process, with its peak memory. They run
a s a s ... `--repeats` times; each row gives the medians and the median of the paired ratios
with min and max.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SKLEARN = """
import sys, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
df = pd.read_csv(sys.argv[1]); y = df.pop("y").to_numpy(); x = df.to_numpy()
rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=0.15, stratify=y, random_state=42)
train_x, _, train_y, _ = train_test_split(rest_x, rest_y, test_size=0.15 / 0.85, stratify=rest_y, random_state=42)
scaler = StandardScaler().fit(train_x)
model = LogisticRegression().fit(scaler.transform(train_x), train_y)
print(model.score(scaler.transform(test_x), test_y))
"""


def write_table(rows: int, columns: int, path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    y = (x @ rng.normal(size=columns) + 2 * rng.normal(size=rows) > 0).astype(int)
    pd.DataFrame(x, columns=[f"f{i}" for i in range(columns)]).round(5).assign(y=y).to_csv(path, index=False)
    return path


# Started by `measured` to start the command: a process's peak memory (ru_maxrss) begins at the size
# of the process it was forked from, so the command is forked from this small one, not the benchmark.
PEAK_OF_CHILD = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(f"{usage.ru_maxrss} {time.perf_counter() - start}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak memory in MB, stdout) of `cmd` as a child process."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        proc = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, peak.name, *cmd], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        if proc.returncode:
            raise SystemExit(f"{cmd} failed with exit code {proc.returncode}")
        kb, seconds = peak.read().split()
        return float(seconds), int(kb) / 1024, proc.stdout


def run_litlab(table: Path, run_dir: Path) -> tuple[float, float, float]:
    """(wall_time_s, peak MB, test accuracy) of train.py on `table`."""
    cmd = [sys.executable, "train.py", "data=csv", f"data.path={table}", "data.target=y",
           "model=logistic_regression", "logger=none", "extras.print_config=false",
           "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    _, peak, _ = measured(cmd)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics["wall_time_s"], peak, metrics["test"]["test/acc"]


def ratio_text(a: list[float], b: list[float]) -> str:
    r = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000,1000000")
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="litlab-table-bench-"))
    print("| rows | litlab wall_time_s | scikit-learn script | time ratio | litlab peak MB | scikit-learn peak MB "
          "| memory ratio | test acc litlab / scikit-learn |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rows in [int(r) for r in args.rows.split(",")]:
        table = write_table(rows, args.columns, work / f"table_{rows}.csv")
        a_time, a_mem, s_time, s_mem, accs = [], [], [], [], ("", "")
        for i in range(args.repeats):  # a s a s ...
            t, m, acc = run_litlab(table, work / f"run_{rows}_{i}")
            a_time.append(t), a_mem.append(m)
            wall, peak, out = measured([sys.executable, "-c", SKLEARN, str(table)])
            s_time.append(wall), s_mem.append(peak)
            accs = (f"{acc:.4f}", f"{float(out.strip()):.4f}")
        print(f"| {rows:,} | {statistics.median(a_time):.1f} s | {statistics.median(s_time):.1f} s | "
              f"{ratio_text(a_time, s_time)} | {statistics.median(a_mem):.0f} | {statistics.median(s_mem):.0f} | "
              f"{ratio_text(a_mem, s_mem)} | {accs[0]} / {accs[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Tables as users have them: litlab's logistic regression against the scikit-learn script a user
would write, on a matrix of generated CSV files, interleaved.

    python scripts/benchmarks/table_benchmark.py [--tables NAME,...] [--repeats 2] [--list]

Each table (TABLES below) varies the base one, 1M rows x 30 numeric features rounded to 5
decimals with a noisy binary target (test accuracy ~0.88), in one way: fewer or more rows, more
columns, values written at full float32 precision, a nearly separable target (~0.97), ten
classes, or five categorical string columns of 10 to 1,000 levels. Each is written once, seeded.
(a) `python train.py data=csv model=logistic_regression` on it: `wall_time_s` from its
metrics.json (the run itself, without Python's start-up and imports) and the process's peak
memory; (s) the scikit-learn script: pandas read, one-hot encoding of the string columns
(pd.get_dummies, as litlab does), stratified 70/15/15 split (the same rows as litlab's),
StandardScaler, LogisticRegression(), test accuracy, timed as a whole process, with its peak
memory. They run a s a s ... `--repeats` times; each row gives the medians, the median of the
paired ratios with min and max, and the test accuracies: litlab's, the script's, and the script's
with LogisticRegression(tol=1e-8) (the optimum both minimise; not timed). scikit-learn's default
tol=1e-4 may stop a few iterations short of it, which moves a few of 150,000 test rows; litlab's
must agree with one of the two within one test row, else the benchmark exits 1.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SKLEARN = """
import sys, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
df = pd.read_csv(sys.argv[1]); y = df.pop("y").to_numpy()
strings = [c for c in df.columns if df[c].dtype == object]
x = (pd.get_dummies(df, columns=strings, dtype=float) if strings else df).to_numpy()
rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=0.15, stratify=y, random_state=42)
train_x, _, train_y, _ = train_test_split(rest_x, rest_y, test_size=0.15 / 0.85, stratify=rest_y, random_state=42)
scaler = StandardScaler().fit(train_x)
# the user's script: LogisticRegression(); with an argument, solved to that tolerance instead (the optimum)
tight = {"tol": float(sys.argv[2]), "max_iter": 10000} if len(sys.argv) > 2 else {}
model = LogisticRegression(**tight).fit(scaler.transform(train_x), train_y)
print(model.score(scaler.transform(test_x), test_y), len(test_y))
"""
LEVELS = (10, 30, 100, 300, 1000)  # of the categorical variant's five string columns


@dataclass(frozen=True)
class Table:
    rows: int
    columns: int = 30
    precision: str = "rounded"  # rounded: 5 decimals; float32: every digit float32 holds
    target: str = "noisy"  # noisy: test accuracy ~0.88; separable: ~0.97
    classes: int = 2
    categorical: bool = False  # five string columns of LEVELS levels, besides the numeric ones

    def write(self, path: Path) -> Path:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(self.rows, self.columns)).astype(np.float32)
        # noise against a signal that grows with sqrt(columns): the same accuracy at 30 and 200 columns
        noise = {"noisy": 2.0, "separable": 0.5}[self.target] * np.sqrt(self.columns / 30)
        scores = x @ rng.normal(size=(self.columns, self.classes)) + noise * rng.normal(size=(self.rows, self.classes))
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(self.columns)])
        if self.precision == "rounded":
            frame = frame.round(5)
        if self.categorical:  # each level shifts the target a little: the columns carry signal
            for i, levels in enumerate(LEVELS):
                codes = rng.integers(levels, size=self.rows)
                scores += rng.normal(scale=0.5, size=(levels, self.classes))[codes]
                frame[f"c{i}"] = np.char.add("level", codes.astype(str))
        y = scores.argmax(1) if self.classes > 2 else (scores[:, 0] - scores[:, 1] > 0).astype(int)
        frame.assign(y=y).to_csv(path, index=False)  # float32 unrounded: its shortest exact digits, ~9
        return path


TABLES = {
    "200k": Table(200_000),
    "1M": Table(1_000_000),
    "3M": Table(3_000_000),
    "1M 200 columns": Table(1_000_000, columns=200),
    "1M float32": Table(1_000_000, precision="float32"),
    "1M float32 separable": Table(1_000_000, precision="float32", target="separable"),
    "3M float32 separable": Table(3_000_000, precision="float32", target="separable"),
    "1M 10 classes": Table(1_000_000, classes=10),
    "200k categorical": Table(200_000, categorical=True),
}

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


def run_litlab(table: Path, run_dir: Path, extra: list[str]) -> tuple[float, float, float]:
    """(wall_time_s, peak MB, test accuracy) of train.py on `table`."""
    cmd = [sys.executable, "train.py", "data=csv", f"data.path={table}", "data.target=y",
           "model=logistic_regression", "logger=none", "extras.print_config=false",
           "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}", *extra]  # fmt: skip
    _, peak, _ = measured(cmd)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics["wall_time_s"], peak, metrics["test"]["test/acc"]


def ratio_text(a: list[float], b: list[float]) -> str:
    r = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})"


def compare(name: str, table: Path, work: Path, repeats: int, extra: list[str]) -> bool:
    """One row of the matrix; False when the test accuracies differ by more than one test row."""
    a_time, a_mem, s_time, s_mem = [], [], [], []
    for i in range(repeats):  # a s a s ...
        t, m, acc = run_litlab(table, work / f"run_{name.replace(' ', '_')}_{i}", extra)
        a_time.append(t), a_mem.append(m)
        wall, peak, out = measured([sys.executable, "-c", SKLEARN, str(table)])
        s_time.append(wall), s_mem.append(peak)
        score, test_rows = out.split()
    optimum = float(measured([sys.executable, "-c", SKLEARN, str(table), "1e-8"])[2].split()[0])  # not timed
    # in correct test rows: litlab's accuracy is a float32, whose rounding is a fraction of a row
    rows = [round(a * int(test_rows)) for a in (acc, float(score), optimum)]
    same = min(abs(rows[0] - rows[1]), abs(rows[0] - rows[2])) <= 1
    print(f"| {name} | {statistics.median(a_time):.1f} s | {statistics.median(s_time):.1f} s | "
          f"{ratio_text(a_time, s_time)} | {statistics.median(a_mem):.0f} | {statistics.median(s_mem):.0f} | "
          f"{ratio_text(a_mem, s_mem)} | {acc:.4f} / {float(score):.4f} / {optimum:.4f}{'' if same else ' DIFFER'} |",
          flush=True)  # fmt: skip
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help="names from --list, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="the tables and what each is")
    parser.add_argument("overrides", nargs="*", help="extra overrides for litlab's runs, e.g. optimizer.max_iter=50")
    args = parser.parse_args()
    if args.list:
        for name, table in TABLES.items():
            print(f"{name:24} {table}")
        return
    names = args.tables.split(",")
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise SystemExit(f"--tables: no table(s) {unknown}; valid: {', '.join(TABLES)}")
    work = Path(tempfile.mkdtemp(prefix="litlab-table-bench-"))
    print("| table | litlab wall_time_s | scikit-learn script | time ratio | litlab peak MB | scikit-learn peak MB "
          "| memory ratio | test acc litlab / scikit-learn / its optimum |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    agree = True
    for name in names:
        path = TABLES[name].write(work / f"{name.replace(' ', '_')}.csv")
        agree &= compare(name, path, work, args.repeats, args.overrides)
        path.unlink()
    if not agree:
        raise SystemExit("test accuracies differ by more than one test row (DIFFER above)")


if __name__ == "__main__":
    main()

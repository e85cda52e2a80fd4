"""Run a recorded run again and compare its numbers with the record.

    python scripts/reproduce.py RUN_DIR [--into NEW_DIR] [--tolerance 1e-3]

Reads RUN_DIR/metrics.json (the run's command-line overrides and its provenance), runs
`python train.py` with the same overrides into a new dir (default RUN_DIR-reproduced-<time>),
and compares every final val/ and test/ metric: exactly where the recorded run used the CPU,
within --tolerance (relative) where it used a GPU, whose kernels need not be deterministic. Says
too where the code (git commit, changes), the libraries, the data or the device differ from the
record, and where the composed configs differ. The comparison is written to reproduce.json in the
new dir. Exit code 0: the metrics agree; 1: they do not; 2: RUN_DIR is not a finished run.
"""

import argparse
import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from litlab import files

ROOT = Path(__file__).resolve().parents[1]


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_record(run_dir: Path) -> dict:
    try:
        record = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as e:
        fail(f"{run_dir}: no readable metrics.json ({e}); give the dir of a finished train.py run")
    if record.get("status") != "completed":
        fail(f"{run_dir}: its run did not complete (status {record.get('status')!r}); give a finished run")
    return record


def run_again(overrides: list[str], into: Path) -> dict:
    cmd = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={into}"]
    print("running:", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"the run again failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads((into / "metrics.json").read_text())


def metric_rows(before: dict, after: dict, tolerance: float) -> list[dict]:
    rows = []
    for stage in ("val", "test"):
        for name, value in before.get(stage, {}).items():
            again = after.get(stage, {}).get(name)
            close = again is not None and math.isclose(value, again, rel_tol=tolerance)
            same = again is not None and (value == again if tolerance == 0 else close)
            rows.append({"metric": name, "recorded": value, "reproduced": again, "agrees": same})
    return rows


def config_differences(before: Path, after: Path) -> list[str]:
    """Settings whose values differ between the two runs' config.yaml; each run's own dir reads as
    <run dir> in both (checkpoints, logs and the trainer's root are where each writes)."""

    def flat(run_dir: Path) -> dict[str, object]:
        out: dict[str, object] = {}

        def walk(node: object, prefix: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{prefix}{k}.")
            else:
                out[prefix[:-1]] = node.replace(str(run_dir), "<run dir>") if isinstance(node, str) else node

        walk(OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml")), "")
        return out

    a, b = flat(before), flat(after)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def provenance_differences(before: dict, after: dict) -> list[str]:
    notes = []
    for key in ("git", "versions", "data", "device", "host"):
        if before.get(key) != after.get(key):
            notes.append(f"{key}: {before.get(key)} -> {after.get(key)}")
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--into", type=Path, default=None)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative, for runs recorded on a GPU")
    args = parser.parse_args()
    record = read_record(args.run_dir)
    into = args.into or args.run_dir.with_name(f"{args.run_dir.name}-reproduced-{datetime.now():%Y%m%d-%H%M%S}")
    again = run_again(list(record.get("overrides", [])), into)
    before, after = record.get("provenance", {}), again.get("provenance", {})
    tolerance = 0.0 if str(before.get("device", "cpu")).startswith("cpu") else args.tolerance
    rows = metric_rows(record, again, tolerance)
    result = {
        "recorded": str(args.run_dir),
        "reproduced": str(into),
        "tolerance": tolerance,
        "agrees": all(r["agrees"] for r in rows),
        "metrics": rows,
        "config_differences": config_differences(args.run_dir, into),
        "provenance_differences": provenance_differences(before, after),
    }
    files.write_json(into / "reproduce.json", result)
    for r in rows:
        print(f"{r['metric']:<14} {r['recorded']:.6g}  {r['reproduced']:.6g}  {'same' if r['agrees'] else 'DIFFERS'}")
    for note in [*result["config_differences"], *result["provenance_differences"]]:
        print("differs:", note)
    exact = "exactly" if tolerance == 0 else f"within {tolerance:g} (relative)"
    print(f"{'reproduced' if result['agrees'] else 'NOT reproduced'} {exact}: {into}")
    raise SystemExit(0 if result["agrees"] else 1)


if __name__ == "__main__":
    main()

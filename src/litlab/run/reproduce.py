"""Run a recorded run again and compare its numbers with the record.

    litlab reproduce RUN_DIR [--into NEW_DIR] [--tolerance 1e-3]

Reads RUN_DIR/metrics.json (the run's command-line overrides and its provenance), runs `litlab
train` with the same overrides from the current dir into a new dir (default RUN_DIR-reproduced-<time>),
and compares every final val/ and test/ metric: exactly (bit for bit) where the recorded run used
the CPU, within --tolerance (relative) where it used a GPU, whose kernels need not be deterministic.
Exactly holds on the same machine with the same library versions; another CPU (other vector
instructions) or other versions of torch may change the last digits, and the differences listed
below the table say which of these changed. Says
too where the code (git commit, changes), the libraries, the data or the device differ from the
record, and where the composed configs differ. The comparison is written to reproduce.json in the
new dir. Before running, it refuses a RUN_DIR whose record or config files are missing or broken,
or whose .hydra/config.yaml is not what its overrides compose to now (edited, or conf/ changed):
the rerun would be another run. Exit code 0: every metric agrees; 1: one differs or is missing on
one side (or the rerun crashed); 2: RUN_DIR is refused, or the rerun refused its settings.
"""

import argparse
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from litlab import files
from litlab.conf import DIR as CONF_DIR
from litlab.files.run_record import RunRecord, UnreadableRecord


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(code)


def read_record(run_dir: Path) -> RunRecord:
    """RUN_DIR/metrics.json of a finished run, with the overrides and the final metrics it compares."""
    try:
        record = RunRecord.read(run_dir)
    except (OSError, UnreadableRecord) as e:
        fail(f"{run_dir}: no readable metrics.json ({e}); give the dir of a finished training run")
    if record.status != "completed":
        fail(f"{run_dir}: its run did not complete (status {record.status!r}); give a finished run")
    if not all(isinstance(o, str) for o in record.overrides):
        fail(f"{run_dir}/metrics.json: 'overrides' is {record.overrides!r}, not the run's command-line settings")
    if not recorded_metrics(record):
        fail(f"{run_dir}/metrics.json records no final val/ or test/ metrics to compare; give a finished run")
    return record


def recorded_metrics(record: RunRecord) -> dict[str, float]:
    """The record's final val/ and test/ metrics, {name: value}; only numbers count."""
    return {
        name: value
        for name, value in record.metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def load_settings(path: Path) -> dict:
    """A config file the run wrote, unresolved; one line and exit 2 if it is missing or broken."""
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as e:  # noqa: BLE001 - missing, unreadable or not YAML: the same answer
        fail(f"{path} is missing or unreadable ({type(e).__name__}): reproduce needs the run dir as training left it")
    if not isinstance(loaded, dict):
        fail(f"{path} holds no settings; reproduce needs the run dir as training left it")
    return loaded


def check_recorded_config(run_dir: Path, overrides: list[str]) -> None:
    """Refuse before running where the run's own config files do not stand for what the rerun will
    run: config.yaml (the settings compared afterwards) and Hydra's .hydra/config.yaml must be
    there, and the latter must be what the recorded overrides compose to now. Otherwise the file was
    edited, or conf/ changed since the run, and the rerun would be another run."""
    load_settings(run_dir / "config.yaml")
    loaded = load_settings(run_dir / ".hydra" / "config.yaml")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            now = OmegaConf.to_container(compose("train", overrides=overrides), resolve=False)
    except Exception as e:  # noqa: BLE001 - an override conf/ no longer knows
        fail(f"{run_dir}: its recorded overrides {overrides} no longer compose ({str(e).splitlines()[0]})")
    assert isinstance(now, dict)
    changed = differing(flatten(loaded), flatten(now))
    if changed:
        fail(
            f"{run_dir}/.hydra/config.yaml differs from what the run's recorded overrides compose to now "
            f"({changed[0]}{' and more' if len(changed) > 1 else ''}): the file was edited, or conf/ changed "
            "since the run, so a rerun would not be the recorded run"
        )


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    """{'trainer.max_epochs': 30, ...}: every leaf setting under its dotted key."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {k: v for key, value in node.items() for k, v in flatten(value, f"{prefix}{key}.").items()}


def differing(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)]  # fmt: skip


def run_again(overrides: list[str], into: Path) -> RunRecord:
    cmd = [sys.executable, "-m", "litlab.run.cli", "train", *overrides, f"hydra.run.dir={into}"]
    print("running: litlab", " ".join(cmd[3:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 2:  # a user error: the training command's own line says what
        line = next((x for x in proc.stderr.splitlines() if x.startswith("Error: ")), proc.stderr.strip()[-300:])
        fail(f"the run again was refused: {line.removeprefix('Error: ')}")
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        fail(f"the run again failed (exit {proc.returncode}; its output above)", code=1)
    return RunRecord.read(into)


def metric_rows(before: RunRecord, after: RunRecord, tolerance: float) -> list[dict]:
    """Every final metric either run recorded: a metric on one side only differs."""
    recorded, reproduced = recorded_metrics(before), recorded_metrics(after)
    rows = []
    for name in [*recorded, *(n for n in reproduced if n not in recorded)]:
        value, again = recorded.get(name), reproduced.get(name)
        if value is None or again is None:
            agrees = False
        elif tolerance == 0:
            agrees = value == again
        else:
            agrees = math.isclose(value, again, rel_tol=tolerance)
        rows.append({"metric": name, "recorded": value, "reproduced": again, "agrees": agrees})
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


def main(verb: str, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"litlab {verb}", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--into", type=Path, default=None)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative, for runs recorded on a GPU")
    args = parser.parse_args(argv)
    record = read_record(args.run_dir)
    check_recorded_config(args.run_dir, record.overrides)
    into = args.into or args.run_dir.with_name(f"{args.run_dir.name}-reproduced-{datetime.now():%Y%m%d-%H%M%S}")
    again = run_again(record.overrides, into)
    before, after = record.provenance or {}, again.provenance or {}
    tolerance = 0.0 if str(before.get("device", "cpu")).startswith("cpu") else args.tolerance
    rows = metric_rows(record, again, tolerance)
    result = {
        "recorded": str(args.run_dir),
        "reproduced": str(into),
        "tolerance": tolerance,
        "agrees": bool(rows) and all(r["agrees"] for r in rows),
        "metrics": rows,
        "config_differences": config_differences(args.run_dir, into),
        "provenance_differences": provenance_differences(before, after),
    }
    files.write_json(into / "reproduce.json", result)
    print(verdict(result, rows, tolerance, into))
    raise SystemExit(0 if result["agrees"] else 1)


def number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


def verdict(result: dict, rows: list[dict], tolerance: float, into: Path) -> str:
    """The table of metrics (with its header), the differences, and a last line that says what was compared."""
    width = max([len("metric"), *(len(r["metric"]) for r in rows)])
    lines = [f"{'metric':<{width}}  {'recorded':>10}  {'reproduced':>10}  agrees"]
    lines += [f"{r['metric']:<{width}}  {number(r['recorded']):>10}  {number(r['reproduced']):>10}  "
              f"{'same' if r['agrees'] else 'DIFFERS'}" for r in rows]  # fmt: skip
    lines += [f"differs: {note}" for note in [*result["config_differences"], *result["provenance_differences"]]]
    how = "exactly" if tolerance == 0 else f"within {tolerance:g} (relative)"
    differ = sum(not r["agrees"] for r in rows)
    if result["agrees"]:
        lines.append(f"reproduced {how}: {into}")
    else:
        lines.append(f"NOT reproduced {how}: {differ} of {len(rows)} metrics differ or are missing: {into}")
    return "\n".join(lines)

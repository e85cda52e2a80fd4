"""Run the commands whose results the README and the guides quote, and compare each figure with the
documented one.

    python scripts/tools/check_figures.py [--tolerance 0] [--only TEXT] [--skip TEXT] [--list]

It reads every table row of README.md and docs/*.md that gives a `litlab train ...` command and its
test metrics (`| `litlab train ARGS` | acc 0.9778, f1 0.9775 | ...`), runs the command in its own
process (logger=none, into a temporary dir) and compares each metric with the documented value at
the documented precision. A command that names files the checkout does not ship (`DIR`, `<...>`)
is listed as skipped. Exit code 1 if a figure differs by more than `--tolerance` (relative to the
figure, at least 1: an absolute bound for accuracies), 0 otherwise.

The documented figures were measured on an AMD EPYC (AVX2) with the library versions of
requirements.txt: on that machine they agree exactly (tolerance 0). Another CPU (AVX-512, say) may
sum in another order and end a few test rows apart: `--tolerance 0.01` allows that.
"""

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `| `litlab train ARGS` ... | acc 0.9778, f1 0.9775 (a note) | ...`: the note after the figures is left out
METRIC = r"(?:acc|f1|r2|mse|mae|auroc) -?[0-9.]+"
ROW = re.compile(rf"^\| `litlab train ?(?P<args>[^`]*)`[^|]*\| (?P<figures>(?:{METRIC}(?:, )?)+)[^|]*\|")
FIGURE = re.compile(r"([a-z0-9]+) (-?[0-9.]+)")
NEEDS_FILES = re.compile(r"DIR|<[^>]*>|\.\.\.")  # placeholders for the user's own data or runs


@dataclass(frozen=True)
class Claim:
    """A documented command and the test metrics its row gives, where the docs say it."""

    where: str  # docs/results.md:75
    args: tuple[str, ...]
    figures: dict[str, str]  # test metric -> the value as written ("0.9778")

    @property
    def runnable(self) -> bool:
        return not any(NEEDS_FILES.search(a) for a in self.args)


def claims(files: list[Path]) -> list[Claim]:
    found = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if (row := ROW.match(line)) is not None:
                figures = {f"test/{name}": value for name, value in FIGURE.findall(row["figures"])}
                found.append(Claim(f"{path.relative_to(ROOT)}:{number}", tuple(shlex.split(row["args"])), figures))
    return found


def measured(claim: Claim, tmp: Path) -> dict[str, float]:
    """The test metrics of the claim's command, run as documented (logger=none, its own dir)."""
    run_dir = tmp / claim.where.replace("/", "_").replace(":", "_")
    cmd = [sys.executable, "train.py", *claim.args, "logger=none", "extras.print_config=false",
           "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{claim.where}: `litlab train {' '.join(claim.args)}` failed:\n{proc.stderr[-2000:]}")
    return json.loads((run_dir / "metrics.json").read_text())["test"]


def verdicts(claim: Claim, got: dict[str, float], tolerance: float) -> list[tuple[str, str, str, bool]]:
    """(metric, documented, measured at the documented precision, agrees) for each documented figure."""
    out = []
    for metric, text in claim.figures.items():
        decimals = len(text.partition(".")[2])
        value = got.get(metric)
        shown = "missing" if value is None else f"{value:.{decimals}f}"
        documented = float(text)
        agrees = value is not None and (
            shown == text or abs(value - documented) <= tolerance * max(abs(documented), 1.0)
        )
        out.append((metric, text, shown, agrees))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative (at least absolute for figures < 1)")
    parser.add_argument("--only", default="", help="only the commands whose arguments contain this text")
    parser.add_argument("--skip", action="append", default=[], help="not the commands that contain this text (repeat)")
    parser.add_argument("--list", action="store_true", help="list the documented figures, run nothing")
    args = parser.parse_args()
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = [c for c in claims(docs) if args.only in " ".join(c.args)]
    found = [c for c in found if not any(skip in " ".join(c.args) for skip in args.skip)]
    differ = 0
    with tempfile.TemporaryDirectory() as tmp:
        for claim in found:
            command = f"litlab train {' '.join(claim.args)}".strip()
            if args.list or not claim.runnable:
                print(f"{claim.where}  {command}  {claim.figures}{'' if claim.runnable else '  (skipped: needs data)'}")
                continue
            for metric, text, shown, agrees in verdicts(claim, measured(claim, Path(tmp)), args.tolerance):
                differ += not agrees
                print(f"{claim.where}  {command}  {metric} {text} -> {shown}  {'same' if agrees else 'DIFFERS'}",
                      flush=True)  # fmt: skip
    print(f"{differ} figure(s) differ" if differ else "every documented figure agrees")
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()

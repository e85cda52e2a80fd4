"""Run every experiment preset as a user would and print the results table (docs/results.md).

    python scripts/tools/presets.py [--only digits_mlp,sine_mlp] [--log-dir logs] [--data-dir DIR]
    python scripts/tools/presets.py --command "model=mlp data=diabetes" [--command "..."]

Each preset runs `python train.py experiment=NAME` in its own process; the table gives
the test metrics from its metrics.json, its `fit_time_s` (training and validation only), the
wall time of the whole command (Python start-up, imports, data, the test stage too) and, for
comparison, scikit-learn on the same split (litlab.evaluation.reference): LogisticRegression(C) for
classes, LinearRegression (or Ridge(alpha)) for a target, with the preset's C or alpha if it
is a linear model and scikit-learn's defaults otherwise.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from litlab.conf import DIR as CONF_DIR

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SETS = ("mnist", "fashion", "cifar10")
HEADLINE = {"regression": ("test/r2", "test/mse"), "classification": ("test/acc", "test/f1")}


def run(overrides: list[str], log_dir: Path, data_dir: Path | None) -> dict:
    cmd = [
        sys.executable,
        "train.py",
        *overrides,
        f"paths.log_dir={log_dir}",
        "extras.print_config=false",
        "trainer.enable_progress_bar=false",
        *([f"paths.data_dir={data_dir}"] if data_dir else []),
    ]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start
    run_dir = max((log_dir / "train" / "runs").iterdir())  # names sort by start time
    return {"wall_s": wall, "run_dir": run_dir, **json.loads((run_dir / "metrics.json").read_text())}


def reference(run_dir: Path) -> dict[str, float]:
    """scikit-learn's test metrics on the run's own split, rebuilt from its saved config."""
    # Imported here: they bring torch and Lightning, and `--help` should answer at once.
    from litlab.evaluation.reference import fit_reference_like, scores_on_test
    from litlab.run.build import build_datamodule

    cfg = OmegaConf.load(run_dir / "config.yaml")
    dm = build_datamodule(cfg)
    dm.setup()
    return scores_on_test(dm, fit_reference_like(dm, cfg.model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated presets (default: all in conf/experiment)")
    parser.add_argument("--log-dir", type=Path, default=ROOT / "logs" / "presets")
    parser.add_argument("--data-dir", type=Path, help="paths.data_dir for the image presets (MNIST files...)")
    parser.add_argument("--command", action="append", help="train.py overrides to run instead of presets (repeat)")
    args = parser.parse_args()
    if args.command:
        runs = [c.split() for c in args.command]
    else:
        every = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
        presets = args.only.split(",") if args.only else every
        runs = [[f"experiment={p}"] for p in presets]
    print("| command | test metrics | scikit-learn, same split | epochs | fit | wall time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for overrides in runs:
        r = run(overrides, args.log_dir.resolve(), args.data_dir.resolve() if args.data_dir else None)
        kind = "regression" if "test/r2" in r["test"] else "classification"
        ref = reference(r["run_dir"])
        shown, ref_shown = (
            ", ".join(f"{k.split('/')[1]} {m[k]:.4f}" for k in HEADLINE[kind]) for m in (r["test"], ref)
        )
        image_set = any(o.split("=")[-1].split("_")[0] in IMAGE_SETS for o in overrides)
        where = f" paths.data_dir={args.data_dir}" if args.data_dir and image_set else ""
        cmd = f"python train.py {' '.join(overrides)}{where}"
        fit, wall = r["fit_time_s"], r["wall_s"]  # the rest of wall: Python starting, imports, data, test
        print(f"| `{cmd}` | {shown} | {ref_shown} | {r['epochs']} | {fit:.1f} s | {wall:.1f} s |", flush=True)


if __name__ == "__main__":
    main()

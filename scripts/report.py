"""The report of a sweep: python scripts/report.py SWEEP_DIR

Prints the jobs (sorted by the monitored metric) and, over seeds/folds, mean ± std; writes
report.csv, report.md and PNG plots into SWEEP_DIR. Runs by itself at the end of every
multirun (litlab.sweeps.sweep_end.SweepEnd); run it by hand on any finished or running sweep.
"""

import argparse
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path, help="e.g. logs/train/multiruns/<date> or logs/train/hparams_search/<name>")
    args = p.parse_args()
    from litlab.sweeps.report import SweepReport  # pandas and matplotlib: after --help has answered

    try:
        report = SweepReport.load(args.sweep_dir)
    except FileNotFoundError as e:
        p.error(str(e))
    for path in report.write(show=True):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

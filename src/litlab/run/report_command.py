"""The report of a sweep: litlab report SWEEP_DIR [--metric NAME]; two evaluations of the same
split compared: litlab report --compare EVAL_DIR_A EVAL_DIR_B

Prints the jobs with every final val/* and test/* metric (sorted by the monitored metric, or by
--metric; each metric's best value in bold) and, over seeds/folds, mean ± std; writes report.csv,
report.md and PNG plots into SWEEP_DIR (by another metric than the monitored one: into
SWEEP_DIR/report-<metric>/, beside the sweep's own report). Runs by itself at the end of every multirun
(litlab.sweeps.sweep_end.SweepEnd); run it by hand on any finished or running sweep.

--compare: each headline metric of two `litlab evaluate` runs on the same split, A - B with its
paired bootstrap interval, and whether it tells them apart.
"""

import argparse
from pathlib import Path


def main(verb: str, argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog=f"litlab {verb}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "sweep_dir", type=Path, nargs="?", help="e.g. logs/train/multiruns/<date> or logs/train/hparams_search/<name>"
    )
    p.add_argument("--metric", help="sort, group and plot by this recorded metric, e.g. val/acc or test/loss")
    p.add_argument("--compare", type=Path, nargs=2, metavar=("EVAL_DIR_A", "EVAL_DIR_B"), help="two evaluate run dirs")
    args = p.parse_args(argv)
    if (args.sweep_dir is None) == (args.compare is None):
        p.error("give a SWEEP_DIR or --compare EVAL_DIR_A EVAL_DIR_B")
    from litlab.errors import UserError, exit_with

    if args.compare is not None:
        from litlab.evaluation.compare_runs import comparison_lines

        try:
            print("\n".join(comparison_lines(*args.compare)))
        except UserError as e:
            exit_with(e)
        return
    from litlab.sweeps.report import SweepReport  # pandas and matplotlib: after --help has answered

    try:
        report = SweepReport.load(args.sweep_dir, metric=args.metric)
    except UserError as e:  # no such dir, no jobs, a metric the jobs did not record
        exit_with(e)
    for path in report.write(show=True):
        print(f"wrote {path}")

"""Test a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>` (its best checkpoint); the
same as `litlab evaluate ...` (litlab.run.commands)."""

import sys

from litlab.run.commands import run

if __name__ == "__main__":
    run("evaluate", sys.argv[1:])

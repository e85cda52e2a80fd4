"""Train one model: `python train.py model=cnn optimizer.lr=0.01`, or sweep with `-m`; the same as
`litlab train ...` (litlab.run.commands)."""

import sys

from litlab.run.commands import run

if __name__ == "__main__":
    run("train", sys.argv[1:])

"""Predict with a checkpoint or a bundle: `python predict.py ckpt_path=CKPT input=PATH [output=FILE]`,
or `python predict.py bundle=BUNDLE_DIR input=PATH` (onnxruntime only: torch is never imported);
the same as `litlab predict ...` (litlab.run.commands).

CKPT: a .ckpt file, or a run dir (its best checkpoint). BUNDLE_DIR: a folder written by export.py.
PATH: a CSV with the training feature columns, a folder of images, or a .npy array.
"""

import sys

from litlab.run.commands import run

if __name__ == "__main__":
    run("predict", sys.argv[1:])

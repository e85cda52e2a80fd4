"""Training throughput on a folder of pictures, side by side, in one process:

  (a)  litlab: data=image_folder held in memory (decoded once, read back from its cache), the
       Trainer and module that train.py builds from conf/
  (a') litlab: the same, streamed from the files (data.in_memory=false, 2 DataLoader workers)
  (b)  the in-memory limit: the same network and Adam in (c)'s plain loop over shuffled batches of
       one float tensor, the train split scaled once (no decoding, no per-batch conversion, no loader)
  (c)  the usual pipeline: torchvision.datasets.ImageFolder + transforms.v2 + DataLoader
       (num_workers=2, pinned, persistent workers), the same network and Adam in a plain loop

    python scripts/benchmarks/image_folder_benchmark.py [--source mnist|fashion] [--images 10000] [--repeats 3]
        [--steps 300] [--models mlp,cnn] [--steps-per-call 1] [--memory-sizes 5000,20000] [--data-dir DIR]

--source mnist: MNIST's first `--images` train images as 28x28 gray PNG files in class folders;
--source fashion: Fashion-MNIST's (Debian's dataset-fashion-mnist) as 64x64 RGB JPEG files.
Also timed: the first run's decode (no cache) and the cached read, against one epoch of (c).
(a), (a'), (b) and (c) run interleaved `--repeats` times; each row gives the median images/s and
the medians of the paired ratios (a/c, a'/c, b/c, and a/b: how near litlab is to the limit) with
their min and max. The first third of the steps is not timed. --steps-per-call: litlab's
model.steps_per_call for (a) and (a'), several optimizer steps per Lightning step (1: one).
--memory-sizes: the peak memory of `python train.py ... data.in_memory=false` (and =true) on
folders of those many images, each in a fresh process: the streamed path's stays flat.
"""

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["mnist", "fashion"], default="mnist")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--steps-per-call", default="1", help="model.steps_per_call of (a) and (a'): 1, 8, auto, ...")
    parser.add_argument("--memory-sizes", default="", help="e.g. 5000,20000; empty: no memory table")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")  # conf/data/mnist.yaml's
    args = parser.parse_args()
    import image_folder_throughput  # torch, Lightning and litlab: after --help has answered

    image_folder_throughput.run(args)


if __name__ == "__main__":
    main()

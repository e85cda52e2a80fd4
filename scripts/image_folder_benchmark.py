"""Training throughput on a folder of pictures, side by side, in one process:

  (a) litlab: data=image_folder (decoded once, read back from its cache), the Trainer and module
      that train.py builds from conf/
  (c) the usual pipeline: torchvision.datasets.ImageFolder + transforms.v2 + DataLoader
      (num_workers=2, persistent workers), the same network and Adam in a plain loop

    python scripts/image_folder_benchmark.py [--images 10000] [--repeats 3] [--steps 300]
                                             [--models mlp,cnn] [--data-dir ../shared/data]

The folder is MNIST's first `--images` train images written as 28x28 PNG files in class folders.
Also timed: the first run's decode (no cache) and the cached read, against one epoch of (c).
(a) and (c) run interleaved `--repeats` times; each row gives the median images/s and the median
of the paired ratios a/c with their min and max. The first third of the steps is not timed.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchmark import ROOT, StepTimer, timed_loop  # scripts/benchmark.py, beside this file
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.io import write_png
from torchvision.transforms import v2

from litlab.data import ImageFolderDataModule, MNISTDataModule
from litlab.review.console import quiet_third_party
from litlab.run.build import build_datamodule, build_model, build_trainer

MODELS = {"mlp": ["model=mlp", "model.hidden_sizes=[256]"], "cnn": ["model=cnn"]}
BATCH = 64


def write_folder(data_dir: Path, images: int, into: Path) -> Path:
    mnist = MNISTDataModule(data_dir=str(data_dir), download=False).arrays
    for i in range(images):
        folder = into / str(mnist.y[i])
        folder.mkdir(parents=True, exist_ok=True)
        write_png(torch.as_tensor(mnist.x[i]), str(folder / f"{i:05d}.png"))
    return into


def config(model: str, folder: Path, cache: Path, steps: int):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=image_folder", f"data.path={folder}", f"data.cache_dir={cache}", f"data.batch_size={BATCH}",
            *MODELS[model], "optimizer=adam", "trainer.accelerator=cpu", "trainer.devices=1",
            f"++trainer.max_steps={steps}", "++trainer.limit_val_batches=0", "++trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "++trainer.enable_checkpointing=false", "callbacks=none", "logger=none",
        ])  # fmt: skip
    with open_dict(cfg):
        cfg.paths.output_dir = tempfile.mkdtemp(prefix="litlab-bench-")
    return cfg


def run_litlab(cfg, warmup: int) -> float:
    """(a): images/s of data=image_folder read back from its cache, through train.py's Trainer."""
    dm = build_datamodule(cfg)
    timer = StepTimer(warmup, torch.device("cpu"))
    build_trainer(cfg, extra_callbacks=[timer]).fit(build_model(cfg, dm), datamodule=dm)
    return timer.steps * BATCH / timer.seconds


def template_loader(folder: Path, shift: float, scale: float) -> DataLoader:
    to_float = v2.ToDtype(torch.float32, scale=True)
    tf = v2.Compose([v2.ToImage(), v2.Grayscale(), to_float, v2.Normalize([shift], [scale])])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=True)


def run_template(cfg, loader: DataLoader, steps: int, warmup: int) -> float:
    """(c): the same network and Adam over ImageFolder + transforms.v2 + a 2-worker DataLoader."""
    net = build_model(cfg, build_datamodule(cfg)).net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)

    def batches():
        while True:
            yield from loader

    return (steps - warmup) * BATCH / timed_loop(net, opt, batches(), steps, warmup, torch.device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    quiet_third_party()
    work = Path(tempfile.mkdtemp(prefix="litlab-folder-bench-"))
    folder, cache = write_folder(args.data_dir, args.images, work / "pictures"), work / "cache"
    start = time.perf_counter()
    dm = ImageFolderDataModule(path=str(folder), cache_dir=str(cache))
    dm.setup()
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    assert len(ImageFolderDataModule(path=str(folder), cache_dir=str(cache)).arrays.y) == args.images
    cached_s = time.perf_counter() - start
    shift, scale = float(dm.scaler.shift.flatten()[0]) / 255, float(dm.scaler.scale.flatten()[0]) / 255
    loader = template_loader(folder, shift, scale)
    warmup = args.steps // 3
    print(f"{args.images} PNG files 28x28; decode {decode_s:.1f} s (first run), cached read {cached_s:.2f} s")
    print("| model | a images/s | c images/s | a/c median (min-max) | an epoch of c |")
    print("| --- | --- | --- | --- | --- |")
    for model in args.models.split(","):
        cfg = config(model, folder, cache, args.steps)
        a, c = [], []
        for _ in range(args.repeats):  # interleaved: a c a c ...
            a.append(run_litlab(cfg, warmup))
            c.append(run_template(cfg, loader, args.steps, warmup))
        r = [x / y for x, y in zip(a, c, strict=True)]
        epoch = args.images / statistics.median(c)
        print(f"| {model}/{BATCH} | {statistics.median(a):,.0f} | {statistics.median(c):,.0f} | "
              f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f}) | {epoch:.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()

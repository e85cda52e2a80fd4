"""The timed parts of scripts/image_folder_benchmark.py: the folder of pictures written, (a) and
(a') through litlab, (b) over one in-memory tensor, (c) through torchvision's ImageFolder, and
the peak-memory runs. Imported
once the script's arguments are parsed, so that `--help` answers without torch and Lightning.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from table_benchmark import measured, ratio_text  # scripts/table_benchmark.py
from throughput import StepTimer, timed_loop  # scripts/throughput.py, beside this file
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.io import write_jpeg, write_png
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from litlab.compat import allow_fast_cuda_checks
from litlab.conf import DIR as CONF_DIR
from litlab.data import ImageFolderDataModule, MNISTDataModule
from litlab.data.torchvision_sets import read_idx
from litlab.review.console import quiet_third_party
from litlab.run.build import build_datamodule, build_model, build_trainer

MODELS = {"mlp": ["model=mlp", "model.hidden_sizes=[256]"], "cnn": ["model=cnn"]}
BATCH = 64
FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def write_folder(source: str, data_dir: Path, images: int, into: Path) -> Path:
    """The first `images` train images of `source` in class folders: MNIST as 28x28 gray PNGs,
    Fashion-MNIST as 64x64 RGB JPEGs."""
    if source == "mnist":
        mnist = MNISTDataModule(data_dir=str(data_dir), download=False).arrays
        x, y = mnist.held, mnist.y
    else:
        x, y = read_idx(FASHION / "train-images-idx3-ubyte.gz"), read_idx(FASHION / "train-labels-idx1-ubyte.gz")
    for i in range(images):
        folder = into / str(y[i])
        folder.mkdir(parents=True, exist_ok=True)
        image = torch.tensor(x[i]).reshape(1, 28, 28)
        if source == "mnist":
            write_png(image, str(folder / f"{i:05d}.png"))
        else:
            write_jpeg(TF.resize(image, [64, 64], antialias=True).expand(3, -1, -1).contiguous(),
                       str(folder / f"{i:05d}.jpg"), quality=90)  # fmt: skip
    return into


def config(model: str, folder: Path, cache: Path, steps: int, streamed: bool, steps_per_call: str = "1"):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=image_folder", f"data.path={folder}", f"data.cache_dir={cache}", f"data.batch_size={BATCH}",
            f"data.in_memory={str(not streamed).lower()}", "data.num_workers=2",
            *MODELS[model], f"model.steps_per_call={steps_per_call}", "optimizer=adam", "trainer.accelerator=cpu",
            "trainer.devices=1",
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


def template_loader(folder: Path, shift: list[float], scale: list[float]) -> DataLoader:
    gray = [v2.Grayscale()] if len(shift) == 1 else []
    to_float = v2.ToDtype(torch.float32, scale=True)
    tf = v2.Compose([v2.ToImage(), *gray, to_float, v2.Normalize(shift, scale)])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    return DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=2, pin_memory=torch.cuda.is_available(), persistent_workers=True
    )


def run_template(cfg, loader: DataLoader, steps: int, warmup: int) -> float:
    """(c): the same network and Adam over ImageFolder + transforms.v2 + a 2-worker DataLoader."""
    net = build_model(cfg, build_datamodule(cfg)).net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)

    def batches():
        while True:
            yield from loader

    return (steps - warmup) * BATCH / timed_loop(net, opt, batches(), steps, warmup, torch.device("cpu"))


def tensor_batches(dm) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of the train split, scaled once into one float tensor: no decoding, no
    conversion per batch, no loader."""
    split = dm.split_tensors("train")
    x, y = dm.scaler(split.x), split.y  # (N, C, H, W) float32, (N,)
    while True:
        order = torch.randperm(len(y))
        for i in range(0, len(y) - BATCH + 1, BATCH):
            rows = order[i : i + BATCH]
            yield x.index_select(0, rows), y.index_select(0, rows)


def run_tensor(cfg, steps: int, warmup: int) -> float:
    """(b): the in-memory limit, the same network and Adam in (c)'s plain loop over tensor_batches."""
    dm = build_datamodule(cfg)
    net = build_model(cfg, dm).net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    return (steps - warmup) * BATCH / timed_loop(net, opt, tensor_batches(dm), steps, warmup, torch.device("cpu"))


def peak_memory(folder: Path, cache: Path, model: str, streamed: bool, steps: int, run_dir: Path) -> float:
    """Peak MB of `python train.py` on `folder`, `steps` training steps, in a fresh process."""
    cmd = [sys.executable, "train.py", "data=image_folder", f"data.path={folder}", f"data.cache_dir={cache}",
           f"data.in_memory={str(not streamed).lower()}", "data.num_workers=2", *MODELS[model],
           "trainer.max_epochs=1", f"++trainer.limit_train_batches={steps}", "++trainer.limit_val_batches=10",
           "++trainer.limit_test_batches=10",
           "logger=none", "extras.print_config=false", "trainer.enable_progress_bar=false",
           "trainer.accelerator=cpu", f"hydra.run.dir={run_dir}"]  # fmt: skip
    return measured(cmd)[1]


def throughput_table(args: argparse.Namespace, folder: Path, cache: Path, loader: DataLoader) -> None:
    warmup = args.steps // 3
    print("| model | a images/s | a' images/s | b images/s | c images/s | a/c median (min-max) "
          "| a'/c median (min-max) | b/c median (min-max) | a/b median (min-max) | an epoch of c |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for model in args.models.split(","):
        cfgs = [config(model, folder, cache, args.steps, streamed, args.steps_per_call) for streamed in (False, True)]
        a: list[float] = []
        a2: list[float] = []
        b: list[float] = []
        c: list[float] = []
        for _ in range(args.repeats):  # interleaved: a a' b c a a' b c ...
            a.append(run_litlab(cfgs[0], warmup))
            a2.append(run_litlab(cfgs[1], warmup))
            b.append(run_tensor(cfgs[0], args.steps, warmup))
            c.append(run_template(cfgs[0], loader, args.steps, warmup))
        epoch = args.images / statistics.median(c)
        medians = " | ".join(f"{statistics.median(v):,.0f}" for v in (a, a2, b, c))
        ratios = " | ".join(ratio_text(p, q) for p, q in ((a, c), (a2, c), (b, c), (a, b)))
        print(f"| {model}/{BATCH} | {medians} | {ratios} | {epoch:.1f} s |")


def memory_table(args: argparse.Namespace, work: Path) -> None:
    print("| images | streamed peak MB | in memory peak MB |\n| --- | --- | --- |")
    for n in [int(k) for k in args.memory_sizes.split(",")]:
        folder = write_folder(args.source, args.data_dir, n, work / f"pictures_{n}")
        cache = work / f"cache_{n}"
        ImageFolderDataModule(path=str(folder), cache_dir=str(cache), in_memory=False).setup()  # checked, cached
        ImageFolderDataModule(path=str(folder), cache_dir=str(cache), in_memory=True).setup()  # decoded, cached
        peaks = [peak_memory(folder, cache, "mlp", streamed, 50, work / f"mem_{n}_{streamed}")
                 for streamed in (True, False)]  # fmt: skip
        print(f"| {n:,} | {peaks[0]:,.0f} | {peaks[1]:,.0f} |")


def run(args: argparse.Namespace) -> None:
    """The decode and cache times, then the throughput and memory tables that `args` ask for."""
    allow_fast_cuda_checks()  # as litlab's train() does: else every optimizer step, of (a), (b) and (c), opens NVML
    quiet_third_party()
    work = Path(tempfile.mkdtemp(prefix="litlab-folder-bench-"))
    folder, cache = write_folder(args.source, args.data_dir, args.images, work / "pictures"), work / "cache"
    start = time.perf_counter()
    dm = ImageFolderDataModule(path=str(folder), cache_dir=str(cache), in_memory=True)
    dm.setup()
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    assert len(ImageFolderDataModule(path=str(folder), cache_dir=str(cache), in_memory=True).arrays.y) == args.images
    cached_s = time.perf_counter() - start
    shape = "x".join(map(str, dm.spec.input_shape))
    print(f"{args.images} {args.source} files, {shape}; decode {decode_s:.1f} s (first run), "
          f"cached read {cached_s:.2f} s")  # fmt: skip
    ImageFolderDataModule(path=str(folder), cache_dir=str(cache), in_memory=False).setup()  # its check pass, cached
    shift, scale = (dm.scaler.shift.flatten() / 255).tolist(), (dm.scaler.scale.flatten() / 255).tolist()
    if args.models:
        throughput_table(args, folder, cache, template_loader(folder, shift, scale))
    if args.memory_sizes:
        memory_table(args, work)
    shutil.rmtree(work, ignore_errors=True)

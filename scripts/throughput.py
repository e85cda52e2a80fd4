"""The timed parts of scripts/benchmark.py: (a) litlab's Trainer, (b) the plain loop, (c) the
torchvision + DataLoader template, each row interleaved. Imported by the benchmark scripts once
their arguments are parsed, so that `--help` answers without torch and Lightning.
"""

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from litlab.compat import allow_fast_cuda_checks
from litlab.data.images import MNIST_FILES
from litlab.review.console import quiet_third_party
from litlab.run.build import build_datamodule, build_model, build_trainer

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mlp": ["model=mlp", "model.hidden_sizes=[256]"], "cnn": ["model=cnn"]}  # 784-256-10; the classic CNN


class StepTimer(L.Callback):
    """Wall time from the first call that starts at step `warmup` or later to the end of the last
    step (as for b and c: the once-per-epoch metric computation is not part of a step). With
    model.steps_per_call=K a call takes K steps: `steps` counts the steps timed."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start, self.seconds, self.first_step, self.steps = 0.0, 0.0, -1, 0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step < 0 and trainer.global_step >= self.warmup:
            self._sync()
            self.start, self.first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == trainer.max_steps:
            self._sync()
            self.seconds = time.perf_counter() - self.start
            self.steps = trainer.global_step - self.first_step


def compose_cfg(
    model: str,
    batch_size: int,
    steps: int,
    device: str,
    data_dir: Path,
    mlp_hidden: int = 256,
    steps_per_call: int | str = 1,
):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=mnist",
                f"data.data_dir={data_dir}",
                f"data.batch_size={batch_size}",
                *MODELS[model],
                *([f"model.hidden_sizes=[{mlp_hidden}]"] if model == "mlp" else []),
                "optimizer=adam",
                f"model.steps_per_call={steps_per_call}",
                f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
                "trainer.devices=1",
                f"++trainer.max_steps={steps}",
                "++trainer.limit_val_batches=0",
                "++trainer.num_sanity_val_steps=0",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "++trainer.enable_checkpointing=false",
                "callbacks=none",
                "logger=none",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = tempfile.mkdtemp(prefix="litlab-bench-")
    return cfg


def run_litlab(cfg, dm, warmup: int, device: torch.device) -> float:
    """(a): `dm` is built by litlab.run.build.build_datamodule from the same config, once per row."""
    model = build_model(cfg, dm)
    timer = StepTimer(warmup, device)
    trainer = build_trainer(cfg, extra_callbacks=[timer])  # as train.py builds it
    trainer.fit(model, datamodule=dm)
    return timer.steps * cfg.data.batch_size / timer.seconds


def timed_loop(net, opt, batches, steps: int, warmup: int, device: torch.device) -> float:
    net.train()
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        if i == steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run_plain(cfg, dm, warmup: int, device: torch.device) -> float:
    """(b): the uint8 train tensor on the device, a shuffled permutation, per-batch normalization."""
    net = build_model(cfg, dm).net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    split = dm.split_tensors("train")
    x, y = split.x.to(device), split.y.to(device)
    shift, scale = dm.scaler.shift.to(device), dm.scaler.scale.to(device)
    b, steps = cfg.data.batch_size, cfg.trainer.max_steps

    def batches():
        while True:
            order = torch.randperm(len(x), device=device)
            for s in range(0, len(x) - b + 1, b):
                idx = order[s : s + b]
                yield (x[idx].float() - shift) / scale, y[idx]

    return (steps - warmup) * b / timed_loop(net, opt, batches(), steps, warmup, device)


def run_template(cfg, dm, mnist_root: Path, warmup: int, device: torch.device) -> float:
    """(c): torchvision MNIST (PIL image per sample, ToTensor, Normalize) and a DataLoader."""
    net = build_model(cfg, dm).net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(str(mnist_root), train=True, transform=tf)
    b, steps = cfg.data.batch_size, cfg.trainer.max_steps

    def batches():
        while True:
            yield from DataLoader(ds, batch_size=b, shuffle=True, pin_memory=device.type == "cuda")

    return (steps - warmup) * b / timed_loop(net, opt, batches(), steps, warmup, device)


def torchvision_layout(dm, into: Path) -> Path:
    """torchvision's MNIST class wants uncompressed files in ROOT/MNIST/raw; write them there."""
    raw = into / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        src = dm.files[name]
        with (gzip.open if src.suffix == ".gz" else open)(src, "rb") as f, open(raw / name, "wb") as out:
            shutil.copyfileobj(f, out)
    return into


def markdown(rows: list[dict], tta: dict | None, device: str) -> str:
    lines = [
        f"Device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| model | batch | steps_per_call | a: litlab samples/s | b: plain loop | c: torchvision+DataLoader "
        "| a/b (min-max) | a/c (min-max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['steps_per_call']} | {r['samples_per_s_a']:,.0f} | "
            f"{r['samples_per_s_b']:,.0f} | "
            f"{r['samples_per_s_c']:,.0f} | {r['ratio_a_b']:.2f} ({r['ratio_a_b_min']:.2f}-{r['ratio_a_b_max']:.2f}) | "
            f"{r['ratio_a_c']:.2f} ({r['ratio_a_c_min']:.2f}-{r['ratio_a_c_max']:.2f}) |"
        )
    if tta:
        lines += [
            "",
            f"Time to 99% test accuracy: `{tta['command']}`: {tta['reached_99']} of {len(tta['runs'])} runs "
            f"reached 99%, median {tta['wall_s']:.1f} s from command to result",
        ]
        if "ratio" in tta:
            lines[-1] += (
                f"; vs the plain probe (`plain_mnist_probe.py`, run between them): "
                f"{tta['ratio']:.2f}x ({tta['ratio_min']:.2f}-{tta['ratio_max']:.2f})"
            )
    return "\n".join(lines) + "\n"


def ratios(a: list[float], b: list[float], c: list[float]) -> dict:
    """Medians of each column and of the paired ratios a/b and a/c, with their min and max."""
    ab = [x / y for x, y in zip(a, b, strict=True)]
    ac = [x / y for x, y in zip(a, c, strict=True)]
    return {
        "samples_per_s_a": statistics.median(a),
        "samples_per_s_b": statistics.median(b),
        "samples_per_s_c": statistics.median(c),
        "ratio_a_b": statistics.median(ab),
        "ratio_a_c": statistics.median(ac),
        "ratio_a_b_min": min(ab),
        "ratio_a_b_max": max(ab),
        "ratio_a_c_min": min(ac),
        "ratio_a_c_max": max(ac),
    }


def steps_per_row(args: argparse.Namespace) -> dict[tuple[str, int], int]:
    """Timed steps per (model, batch size): enough for ~1 s of MLP work on CPU; the CNN is ~20x
    slower per sample. `--quick` halves them, CUDA takes 4x, `--only` keeps a subset."""
    steps = {("mlp", 64): 300, ("mlp", 512): 60, ("cnn", 64): 20, ("cnn", 512): 6}
    if args.quick:
        steps = {k: max(v // 2, 3) for k, v in steps.items()}
    if args.device == "cuda":
        steps = {k: v * 4 for k, v in steps.items()}
    if args.only:
        keep = {(m, int(b)) for m, b in (item.split(":") for item in args.only.split(",") if ":" in item)}
        steps = {k: v for k, v in steps.items() if k in keep}
    return steps


def measure(args: argparse.Namespace) -> list[dict]:
    """Every row of the table: (a) at each `--steps-per-call`, (b) and (c), interleaved `--repeats` times."""
    allow_fast_cuda_checks()
    quiet_third_party()
    L.seed_everything(0, verbose=False)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 5)
    ks: list[int | str] = [k if k == "auto" else int(k) for k in args.steps_per_call.split(",")]
    if 1 not in ks:
        ks.insert(0, 1)  # b and c are built from the K=1 config
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="litlab-bench-mnist-"))
    mnist_root = None
    for (model, b), n in steps_per_row(args).items():
        warmup = args.warmup if model == "mlp" else max(args.warmup // 3, 1)  # a CNN step is ~20x longer
        cfgs = {k: compose_cfg(model, b, warmup + n, args.device, args.data_dir.absolute(), args.mlp_hidden, k)
                for k in ks}  # fmt: skip
        dm = build_datamodule(cfgs[1])
        dm.setup()
        mnist_root = mnist_root or torchvision_layout(dm, tmp)
        a: dict[int | str, list[float]] = {k: [] for k in ks}
        bb, c = [], []
        for _ in range(repeats):  # interleaved, so that drifts in machine speed hit all alike
            for k in ks:
                a[k].append(run_litlab(cfgs[k], dm, warmup, device))
            bb.append(run_plain(cfgs[1], dm, warmup, device))
            c.append(run_template(cfgs[1], dm, mnist_root, warmup, device))
        for k in ks:
            row = {"model": model, "batch_size": b, "steps_per_call": k, **ratios(a[k], bb, c)}
            rows.append(row | {"steps": n, "repeats": repeats, "device": args.device})
            print(markdown([row], None, args.device).splitlines()[-1], flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return rows

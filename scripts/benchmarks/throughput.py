"""The timed parts of scripts/benchmarks/benchmark.py: (a) litlab's Trainer, (b) the plain loop, (b') the plain
loop with a CUDA-graph step, (c) the torchvision + DataLoader template, each row interleaved.
Imported by the benchmark scripts once their arguments are parsed, so that `--help` answers
without torch and Lightning.
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
from litlab.conf import DIR as CONF_DIR
from litlab.data.torchvision_sets import MNIST_FILES
from litlab.review.console import quiet_third_party
from litlab.run.build import build_datamodule, build_model, build_trainer

ROOT = Path(__file__).resolve().parents[2]
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
    cuda_graphs: bool = False,
):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
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
                f"model.cuda_graphs={str(cuda_graphs).lower()}",
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
    """Seconds of steps `warmup`..`steps` of the plain eager step: zero_grad, forward, backward, step."""
    net.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed_steps(step, batches, steps, warmup, device)


def timed_steps(step, batches, steps: int, warmup: int, device: torch.device) -> float:
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        if i == steps:
            break
        step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def plain_batches(cfg, dm, device: torch.device):
    """(b)'s batches: the uint8 train tensor on the device, a shuffled permutation, per-batch normalization."""
    split = dm.split_tensors("train")
    x, y = split.x.to(device), split.y.to(device)
    shift, scale = dm.scaler.shift.to(device), dm.scaler.scale.to(device)
    b = cfg.data.batch_size
    while True:
        order = torch.randperm(len(x), device=device)
        for s in range(0, len(x) - b + 1, b):
            idx = order[s : s + b]
            yield (x[idx].float() - shift) / scale, y[idx]


def run_plain(cfg, dm, warmup: int, device: torch.device) -> float:
    """(b): the plain loop over plain_batches."""
    net = build_model(cfg, dm).net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    b, steps = cfg.data.batch_size, cfg.trainer.max_steps
    return (steps - warmup) * b / timed_loop(net, opt, plain_batches(cfg, dm, device), steps, warmup, device)


def run_plain_graphed(cfg, dm, warmup: int, device: torch.device) -> float:
    """(b'): (b) with PyTorch's whole-network CUDA-graph recipe (torch.cuda.graphs docs): static input
    buffers, 3 warm-up steps on a side stream, forward + loss + backward + Adam(capturable=True).step
    captured; each batch is copied in and the graph replayed."""
    net = build_model(cfg, dm).net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr, capturable=True)
    batches = plain_batches(cfg, dm, device)
    static_x, static_y = (t.clone() for t in next(batches))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        F.cross_entropy(net(static_x), static_y).backward()
        opt.step()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()

    b, steps = cfg.data.batch_size, cfg.trainer.max_steps
    return (steps - warmup) * b / timed_steps(step, batches, steps, warmup, device)


def run_template(cfg, dm, mnist_root: Path, warmup: int, device: torch.device, steps: int = 0) -> float:
    """(c): torchvision MNIST (PIL image per sample, ToTensor, Normalize) and a DataLoader; `steps`
    (if given) instead of the config's: its rate settles long before the others' do."""
    net = build_model(cfg, dm).net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(str(mnist_root), train=True, transform=tf)
    b, steps = cfg.data.batch_size, steps or cfg.trainer.max_steps

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


REFERENCES = {"b": "b: plain loop", "bg": "b′: plain loop + CUDA graph", "c": "c: torchvision+DataLoader"}


def markdown(rows: list[dict], tta: dict | None, device: str) -> str:
    refs = [r for r in REFERENCES if rows and f"samples_per_s_{r}" in rows[0]]
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    lines = [
        f"Device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| model | batch | steps_per_call | cuda_graphs | a: litlab samples/s | "
        + " | ".join(REFERENCES[r] for r in refs)
        + " | "
        + " | ".join(f"a/{r.replace('bg', 'b′')} (min-max)" for r in refs)
        + " |",
        "|---" * (5 + 2 * len(refs)) + "|",
    ]
    for r in rows:
        cells = [r["model"], r["batch_size"], r["steps_per_call"], str(r.get("cuda_graphs", False)).lower()]
        cells += [f"{r[f'samples_per_s_{k}']:,.0f}" for k in ["a", *refs]]
        cells += [f"{r[f'ratio_a_{k}']:.2f} ({r[f'ratio_a_{k}_min']:.2f}-{r[f'ratio_a_{k}_max']:.2f})" for k in refs]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if tta:
        fits = [r["fit_time_s"] for r in tta["runs"]]
        accs = [r["test_acc"] for r in tta["runs"]]
        lines += [
            "",
            f"Time to 99% test accuracy: `{tta['command']}`: {tta['reached_99']} of {len(tta['runs'])} runs "
            f"reached 99% ({min(accs):.2%}-{max(accs):.2%}), median {tta['wall_s']:.1f} s from command to result, "
            f"fit_time_s median {statistics.median(fits):.2f} s ({min(fits):.2f}-{max(fits):.2f})",
        ]
        if "ratio" in tta:
            lines[-1] += (
                f"; vs the plain probe (`plain_mnist.py`, run between them): "
                f"{tta['ratio']:.2f}x ({tta['ratio_min']:.2f}-{tta['ratio_max']:.2f})"
            )
    return "\n".join(lines) + "\n"


def ratios(a: list[float], refs: dict[str, list[float]]) -> dict:
    """Medians of (a) and of each reference column, and of the paired ratios a/ref with their min and max."""
    out = {"samples_per_s_a": statistics.median(a)}
    for name, ref in refs.items():
        paired = [x / y for x, y in zip(a, ref, strict=True)]
        out |= {
            f"samples_per_s_{name}": statistics.median(ref),
            f"ratio_a_{name}": statistics.median(paired),
            f"ratio_a_{name}_min": min(paired),
            f"ratio_a_{name}_max": max(paired),
        }
    return out


def steps_per_row(args: argparse.Namespace) -> dict[tuple[str, int], int]:
    """Timed steps per (model, batch size): enough for ~1 s of MLP work on CPU; the CNN is ~20x
    slower per sample. On CUDA, where a step takes well under a millisecond once graphed, more of
    them. `--quick` halves them, `--only` keeps a subset."""
    steps = {("mlp", 64): 300, ("mlp", 512): 60, ("cnn", 64): 20, ("cnn", 512): 6}
    if args.device == "cuda":
        steps = {("mlp", 64): 600, ("mlp", 512): 600, ("cnn", 64): 200, ("cnn", 512): 100}
    if args.quick:
        steps = {k: max(v // 2, 3) for k, v in steps.items()}
    if args.only:
        keep = {(m, int(b)) for m, b in (item.split(":") for item in args.only.split(",") if ":" in item)}
        steps = {k: v for k, v in steps.items() if k in keep}
    return steps


def measure(args: argparse.Namespace) -> list[dict]:
    """Every row of the table: (a) at each `--steps-per-call`, with and without CUDA graphs if
    `--cuda-graphs`, then (b), (b') and (c), interleaved `--repeats` times."""
    allow_fast_cuda_checks()
    quiet_third_party()
    L.seed_everything(0, verbose=False)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 5)
    ks: list[int | str] = [k if k == "auto" else int(k) for k in args.steps_per_call.split(",")]
    if 1 not in ks:
        ks.insert(0, 1)  # b and c are built from the K=1 config
    variants = [(k, g) for g in ([False, True] if args.cuda_graphs else [False]) for k in ks]
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="litlab-bench-mnist-"))
    mnist_root = None
    for (model, b), n in steps_per_row(args).items():
        # A CNN step on CPU is ~20x longer. On CUDA the warm-up also covers a graph's capture (step 4).
        warmup = args.warmup if model == "mlp" or args.device == "cuda" else max(args.warmup // 3, 1)
        cfgs = {v: compose_cfg(model, b, warmup + n, args.device, args.data_dir.absolute(), args.mlp_hidden, *v)
                for v in variants}  # fmt: skip
        dm = build_datamodule(cfgs[1, False])
        dm.setup()
        mnist_root = mnist_root or torchvision_layout(dm, tmp)
        a: dict[tuple, list[float]] = {v: [] for v in variants}
        refs: dict[str, list[float]] = {"b": [], **({"bg": []} if args.cuda_graphs else {}), "c": []}
        template_steps = warmup + min(n, max(10, 10240 // b))  # ~10,000 samples
        for _ in range(repeats):  # interleaved, so that drifts in machine speed hit all alike
            for v in variants:
                a[v].append(run_litlab(cfgs[v], dm, warmup, device))
            refs["b"].append(run_plain(cfgs[1, False], dm, warmup, device))
            if args.cuda_graphs:
                refs["bg"].append(run_plain_graphed(cfgs[1, False], dm, warmup, device))
            refs["c"].append(run_template(cfgs[1, False], dm, mnist_root, warmup, device, template_steps))
        for k, g in variants:
            row = {"model": model, "batch_size": b, "steps_per_call": k, "cuda_graphs": g, **ratios(a[k, g], refs)}
            rows.append(row | {"steps": n, "repeats": repeats, "device": args.device})
            print(markdown([row], None, args.device).splitlines()[-1], flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return rows

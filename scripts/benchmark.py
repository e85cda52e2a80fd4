"""Training throughput on MNIST, side by side, in one process:

  (a) litlab: the Trainer, DataModule and LightningModule that train.py builds from conf/
  (b) a plain PyTorch loop over one in-memory tensor: the reference limit
  (c) the usual template pipeline: torchvision MNIST with ToTensor/Normalize and a DataLoader

    python scripts/benchmark.py [--device cpu|cuda] [--quick] [--out bench.json] [--data-dir DIR]
                                [--steps-per-call 1,8,auto] [--only mlp:64,tta]

Same network (built by litlab, freshly initialized each run), same Adam, same number of
steps; the first `--warmup` steps (a third of them for the CNN) are not timed. (a) runs once
per `--steps-per-call` value (model.steps_per_call, set as a user sets it). All run
interleaved (a1 a8 b c a1 a8 b c ...) `--repeats` times; each row gives median samples/s and
the median of the paired ratios a/b and a/c, with their min and max. Without --quick it also
times `python train.py experiment=mnist_fast seed=i` from the command to the printed result,
each run followed by `plain_mnist_probe.py` (`--probe`), `--tta-repeats` times: the runs that
reached 99% test accuracy and the median of the paired wall-time ratios, with min and max.
"""

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
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


def timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds from starting `cmd` to its exit (its result is its last printed line), and its stdout."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def time_to_accuracy(device: str, data_dir: Path, probe: Path, repeats: int) -> dict:
    """`python train.py experiment=mnist_fast[_gpu] seed=i` against the plain probe, interleaved:
    wall time from the command to the printed result, test accuracy, and their ratio per pair."""
    experiment = "mnist_fast_gpu" if device == "cuda" else "mnist_fast"
    runs: list[dict] = []
    for seed in range(repeats):
        run_dir = tempfile.mkdtemp(prefix="litlab-fast-")
        cmd = [sys.executable, "train.py", f"experiment={experiment}", f"data.data_dir={data_dir}", f"seed={seed}"]
        wall, _ = timed(
            [*cmd, f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", f"hydra.run.dir={run_dir}"]
        )
        m = json.loads((Path(run_dir) / "metrics.json").read_text())
        shutil.rmtree(run_dir, ignore_errors=True)
        run = {"seed": seed, "wall_s": wall, "fit_time_s": m["fit_time_s"], "test_acc": m["test"]["test/acc"]}
        if probe.is_file():
            probe_wall, out = timed([sys.executable, str(probe), str(data_dir / "MNIST" / "raw")])
            run |= {"probe_wall_s": probe_wall, "probe_test_acc": float(out.split("test acc ")[-1].split()[0])}
            run["ratio"] = wall / probe_wall
        runs.append(run)
        print(run, flush=True)
    ratios = [r["ratio"] for r in runs if "ratio" in r]
    return {
        "command": f"python train.py experiment={experiment} seed=0..{repeats - 1}",
        "runs": runs,
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "reached_99": sum(r["test_acc"] >= 0.99 for r in runs),
        **({"ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)} if ratios else {}),
    }


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--quick", action="store_true", help="fewer steps and repeats, no time-to-accuracy run (< 2 min)")
    p.add_argument("--out", type=Path, default=Path("benchmark.json"), help="JSON: rows, time_to_accuracy")
    p.add_argument(
        "--data-dir", type=Path, default=ROOT / "data", help="where the MNIST files are (see conf/data/mnist)"
    )
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--only", default=None, help="a subset, e.g. mlp:64,cnn:512 (tta: the time-to-99%% runs)")
    p.add_argument(
        "--mlp-hidden", type=int, default=256, help="MLP hidden width; a tiny one (8) shows Lightning's per-step cost"
    )
    p.add_argument("--steps-per-call", default="1,8", help="values of model.steps_per_call for (a), e.g. 1,8,auto")
    p.add_argument("--tta-repeats", type=int, default=5, help="time-to-99%% runs (seeds 0..N-1), each beside the probe")
    p.add_argument(
        "--probe", type=Path, default=ROOT.parent / "shared" / "bench" / "plain_mnist_probe.py", help="plain reference"
    )
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is available")
    allow_fast_cuda_checks()
    quiet_third_party()
    L.seed_everything(0, verbose=False)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 5)
    # Steps per run: enough for ~1 s of MLP work on CPU; the CNN is ~20x slower per sample.
    steps = {("mlp", 64): 300, ("mlp", 512): 60, ("cnn", 64): 20, ("cnn", 512): 6}
    if args.quick:
        steps = {k: max(v // 2, 3) for k, v in steps.items()}
    if args.device == "cuda":
        steps = {k: v * 4 for k, v in steps.items()}
    if args.only:
        keep = {(m, int(b)) for m, b in (item.split(":") for item in args.only.split(",") if ":" in item)}
        steps = {k: v for k, v in steps.items() if k in keep}
    data_dir = args.data_dir.absolute()
    ks: list[int | str] = [k if k == "auto" else int(k) for k in args.steps_per_call.split(",")]
    if 1 not in ks:
        ks.insert(0, 1)  # b and c are built from the K=1 config

    rows, tmp = [], Path(tempfile.mkdtemp(prefix="litlab-bench-mnist-"))
    mnist_root = None
    for (model, b), n in steps.items():
        warmup = args.warmup if model == "mlp" else max(args.warmup // 3, 1)  # a CNN step is ~20x longer
        cfgs = {k: compose_cfg(model, b, warmup + n, args.device, data_dir, args.mlp_hidden, k) for k in ks}
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
    wants_tta = not args.quick and (not args.only or "tta" in args.only.split(","))
    tta = None if not wants_tta else time_to_accuracy(args.device, data_dir, args.probe, args.tta_repeats)
    md = markdown(rows, tta, args.device)
    args.out.write_text(json.dumps({"rows": rows, "time_to_accuracy": tta}, indent=2))
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

"""Training throughput on MNIST, side by side, in one process:

  (a) litlab: the Trainer, DataModule and LightningModule that train.py builds from conf/
  (b) a plain PyTorch loop over one in-memory tensor: the reference limit
  (b') with --cuda-graphs: that loop with its step captured as a CUDA graph (PyTorch's recipe)
  (c) the usual template pipeline: torchvision MNIST with ToTensor/Normalize and a DataLoader

    python scripts/benchmarks/benchmark.py [--device cpu|cuda] [--quick] [--out bench.json] [--data-dir DIR]
                                           [--steps-per-call 1,8,auto] [--cuda-graphs] [--only mlp:64,tta]

Same network (built by litlab, freshly initialized each run), same Adam, same number of
steps; the first `--warmup` steps (a third of them for the CNN on CPU) are not timed. (a) runs
once per `--steps-per-call` value (model.steps_per_call, set as a user sets it), and with
`--cuda-graphs` once more per value with model.cuda_graphs=true. All run
interleaved (a1 a8 b c a1 a8 b c ...) `--repeats` times; each row gives median samples/s and
the median of the paired ratios a/b and a/c, with their min and max. Without --quick it also
times `python train.py experiment=mnist_fast seed=i` from the command to the printed result,
each run followed by the plain loop of plain_mnist.py (`--probe`), `--tta-repeats` times: the runs that
reached 99% test accuracy and the median of the paired wall-time ratios, with min and max.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: train.py, data/
PROBE = Path(__file__).with_name("plain_mnist.py")  # the plain PyTorch reference, beside this file


def timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds from starting `cmd` to its exit (its result is its last printed line), and its stdout."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def time_to_accuracy(device: str, data_dir: Path, probe: Path, repeats: int, extra: list[str]) -> dict:
    """`python train.py experiment=mnist_fast[_gpu] seed=i` (and the `extra` overrides) against the
    plain probe, interleaved: wall time from the command to the printed result, test accuracy,
    fit_time_s, and the wall-time ratio per pair."""
    experiment = "mnist_fast_gpu" if device == "cuda" else "mnist_fast"
    runs: list[dict] = []
    for seed in range(repeats):
        run_dir = tempfile.mkdtemp(prefix="litlab-fast-")
        cmd = [sys.executable, "train.py", f"experiment={experiment}", *extra, f"data.data_dir={data_dir}"]
        cmd.append(f"seed={seed}")
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
        "command": " ".join(["python train.py", f"experiment={experiment}", *extra, f"seed=0..{repeats - 1}"]),
        "runs": runs,
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "reached_99": sum(r["test_acc"] >= 0.99 for r in runs),
        **({"ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)} if ratios else {}),
    }


def parser() -> argparse.ArgumentParser:
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
    p.add_argument(
        "--cuda-graphs", action="store_true", help="(a) also with model.cuda_graphs=true, and (b'): needs --device cuda"
    )
    p.add_argument("--tta-overrides", default="", help="more train.py overrides for the time-to-99%% runs")
    p.add_argument("--tta-repeats", type=int, default=5, help="time-to-99%% runs (seeds 0..N-1), each beside the probe")
    p.add_argument("--probe", type=Path, default=PROBE, help="the plain reference (default: plain_mnist.py)")
    return p


def main() -> None:
    p = parser()
    args = p.parse_args()
    if args.cuda_graphs and args.device != "cuda":
        p.error("--cuda-graphs needs --device cuda")
    import throughput  # torch, Lightning and litlab (throughput.py, beside this file): after --help has answered

    if args.device == "cuda" and not throughput.torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is available")
    rows = throughput.measure(args)
    wants_tta = not args.quick and (not args.only or "tta" in args.only.split(","))
    tta = None
    if wants_tta:
        extra = args.tta_overrides.split()
        tta = time_to_accuracy(args.device, args.data_dir.absolute(), args.probe, args.tta_repeats, extra)
    md = throughput.markdown(rows, tta, args.device)
    args.out.write_text(json.dumps({"rows": rows, "time_to_accuracy": tta}, indent=2))
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

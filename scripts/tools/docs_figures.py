"""Every picture in docs/, made again from the command the docs give beside it:

  lr_vs_depth.png          python train.py -m experiment=lr_vs_depth: the sweep report's heatmap
  tensorboard_hparams.png  python train.py -m 'model.hidden_sizes=[32],[128]' optimizer.lr=0.001,0.01
                           trainer.max_epochs=10 trainer=cpu: TensorBoard's HParams tab
  confusion_matrix.png     the same sweep's first run: the test-set confusion matrix TensorBoard shows
  lr_find.png              python train.py tune=lr_find: the range test's curve and suggestions
  evaluation_reliability.png  python train.py, then python evaluate.py ckpt_path=<run> calibrate=true:
                           the report's reliability diagram
  optuna_dashboard.png     python train.py -m hparams_search=digits_mlp hydra.sweeper.n_trials=12
                           trainer.max_epochs=5 logger=none: optuna-dashboard over the study

    python scripts/tools/docs_figures.py [--only lr_vs_depth,optuna_dashboard] [--out docs]

The runs go to a temporary dir; the screenshots need headless Chromium (Debian: apt-get install
chromium). Servers listen on 127.0.0.1 only and are stopped by their own PID.
tests/test_docs_links.py checks that every picture in docs/ is one this script makes.
"""

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HPARAMS_SWEEP = ["-m", "model.hidden_sizes=[32],[128]", "optimizer.lr=0.001,0.01", "trainer.max_epochs=10",
                 "trainer=cpu"]  # fmt: skip
OPTUNA = ["-m", "hparams_search=digits_mlp", "hydra.sweeper.n_trials=12", "trainer.max_epochs=5", "logger=none"]


def train(overrides: list[str], sweep_dir: Path) -> None:
    where = "hydra.sweep.dir" if "-m" in overrides else "hydra.run.dir"
    cmd = [sys.executable, "train.py", *overrides, f"{where}={sweep_dir}", "trainer.enable_progress_bar=false"]
    print("$ " + " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("chromium not found: the screenshots need it (apt-get install chromium)")
    return found


def screenshot(url: str, out: Path, size: str = "1500,950") -> None:
    """A page as headless Chromium draws it, after 15 s of its scripts' time."""
    cmd = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={size}",
           "--virtual-time-budget=15000", f"--screenshot={out}", url]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    print(f"wrote {out}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(cmd: list[str], url: str, seconds: float = 90) -> subprocess.Popen:
    """`cmd` started in its own process group, once `url` answers (at most `seconds`)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}")
            time.sleep(0.5)
    stop(proc)
    sys.exit(f"{url} did not answer within {seconds:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def lr_vs_depth(work: Path, out: Path) -> None:
    train(["-m", "experiment=lr_vs_depth"], work / "lr_vs_depth")
    shutil.copyfile(work / "lr_vs_depth" / "heatmap.png", out / "lr_vs_depth.png")
    print(f"wrote {out / 'lr_vs_depth.png'}; the numbers: {work / 'lr_vs_depth' / 'report.md'}", flush=True)
    print((work / "lr_vs_depth" / "report_grouped.csv").read_text(), flush=True)


def tensorboard(work: Path, out: Path) -> None:
    sweep = work / "hparams"
    train(HPARAMS_SWEEP, sweep)
    confusion_matrix(sweep, out / "confusion_matrix.png")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep), "--host", "127.0.0.1",
           "--port", str(port), "--load_fast", "false"]  # fmt: skip
    server = serving(cmd, url)
    try:
        time.sleep(5)  # it reads the event files after it answers
        screenshot(f"{url}#hparams", out / "tensorboard_hparams.png")
    finally:
        stop(server)


def confusion_matrix(sweep: Path, out: Path) -> None:
    """The image a run logged under its confusion-matrix tag, as TensorBoard shows it."""
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    for events in sorted(sweep.glob("*/events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={IMAGES: 0})
        acc.Reload()
        tags = [t for t in acc.Tags()[IMAGES] if "confusion" in t]
        if tags:
            out.write_bytes(acc.Images(tags[0])[-1].encoded_image_string)
            print(f"wrote {out} ({events.parent.name}, {tags[0]})", flush=True)
            return
    sys.exit(f"no confusion-matrix image in the event files under {sweep}")


def lr_find(work: Path, out: Path) -> None:
    train(["tune=lr_find"], work / "lr_find")
    shutil.copyfile(work / "lr_find" / "lr_find.png", out / "lr_find.png")
    print(f"wrote {out / 'lr_find.png'}", flush=True)


def evaluation(work: Path, out: Path) -> None:
    train([], work / "digits")
    cmd = [sys.executable, "evaluate.py", f"ckpt_path={work / 'digits'}", "calibrate=true",
           f"hydra.run.dir={work / 'eval'}"]  # fmt: skip
    print("$ " + " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    shutil.copyfile(work / "eval" / "report" / "reliability.png", out / "evaluation_reliability.png")
    print(f"wrote {out / 'evaluation_reliability.png'}", flush=True)


def optuna_dashboard(work: Path, out: Path) -> None:
    sweep = work / "optuna"
    train(OPTUNA, sweep)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = serving([sys.executable, "-m", "litlab.run.cli", "dashboard", str(sweep), "--port", str(port)], url)
    try:
        screenshot(f"{url}dashboard/studies/1", out / "optuna_dashboard.png", size="1500,1100")
    finally:
        stop(server)


FIGURES: dict[str, tuple[Callable[[Path, Path], None], list[str]]] = {
    "lr_vs_depth": (lr_vs_depth, ["lr_vs_depth.png"]),
    "tensorboard": (tensorboard, ["tensorboard_hparams.png", "confusion_matrix.png"]),
    "lr_find": (lr_find, ["lr_find.png"]),
    "evaluation": (evaluation, ["evaluation_reliability.png"]),
    "optuna_dashboard": (optuna_dashboard, ["optuna_dashboard.png"]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(FIGURES), help=f"some of {','.join(FIGURES)}")
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args()
    chosen = args.only.split(",")
    if unknown := set(chosen) - set(FIGURES):
        p.error(f"--only {','.join(sorted(unknown))}: not a figure; choose from {','.join(FIGURES)}")
    if set(chosen) - {"lr_vs_depth", "lr_find", "evaluation"}:
        browser()  # before any training: the screenshots need it
    with tempfile.TemporaryDirectory(prefix="litlab-docs-figures-") as work:
        for name in chosen:
            FIGURES[name][0](Path(work), args.out.resolve())


if __name__ == "__main__":
    main()

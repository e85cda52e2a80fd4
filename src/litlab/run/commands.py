"""The Hydra commands: `litlab train|evaluate|predict|export|serve ARGS`, which the root scripts
(`python train.py ARGS`, ...) run too.

Each function imports torch, Lightning or onnxruntime inside itself, once Hydra has parsed the
command line: --help, --cfg and --info import none of them and answer at once. The configs are
the package's (`pkg://litlab.conf`); Hydra's `--config-dir DIR` puts a folder of the user's in
front of them, with options of its own (DIR/model/my_mlp.yaml is `model=my_mlp`). Each primary
config names its job (hydra.job.name: train.log, evaluate.log, ...), as Hydra would otherwise
name every job after this module.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import hydra
from omegaconf import DictConfig

from litlab.conf import DIR as CONF_DIR
from litlab.errors import exit_on_user_error
from litlab.run.cli import RANKS_VERB
from litlab.run.cli_help import answer_help
from litlab.run.installed import require_extra
from litlab.runtime.cli import names_bundle, one_model, without_callbacks

CONFIGS = "pkg://litlab.conf"
# Hydra's flags that show something and run no job: they need none of the `train` extra.
SHOWS_ONLY = {"-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion"}
# PyTorch's CPU allocator backs each tensor of 2 MB or more with transparent huge pages when this
# is 1, read once, at its first allocation. A full batch of a tall table makes fresh (N, K) tensors
# at every L-BFGS evaluation; faulted in 4 KB pages, they cost up to a quarter of the fit
# (docs/speed.md). Where the kernel offers no huge pages it changes nothing; the user's value wins.
HUGE_PAGES = ("THP_MEM_ALLOC_ENABLE", "1")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def train(cfg: DictConfig) -> float | None:
    from litlab.run.job import run_recorded
    from litlab.run.train import train as train_job

    # The returned value is what Hydra sweepers optimize. A failure or an interrupt is recorded
    # in the run dir (metrics.json); in a multirun the other jobs go on after a failure.
    return run_recorded(train_job, cfg)["optimized_metric"]


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="eval")
def evaluate(cfg: DictConfig) -> None:
    from litlab.run.evaluate import evaluate as evaluate_job

    exit_on_user_error(lambda: evaluate_job(cfg), cfg.extras.traceback)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="export")
def export(cfg: DictConfig) -> None:
    from litlab.inference.export import export as export_job

    exit_on_user_error(
        lambda: export_job(cfg.ckpt_path, cfg.format, cfg.out, cfg.paths.log_dir, cfg.tolerance), cfg.extras.traceback
    )


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="predict")
def predict(cfg: DictConfig) -> None:
    def bundle() -> None:
        from litlab.runtime.predict_files import predict_bundle  # numpy, pandas and onnxruntime only

        predict_bundle(cfg.bundle, cfg.input, cfg.output)

    def checkpoint() -> None:
        from litlab.inference.checkpoint import predict as predict_checkpoint

        predict_checkpoint(cfg.ckpt_path, cfg.input, cfg.output, cfg.paths.log_dir)

    bundle_or_checkpoint(cfg, bundle, checkpoint)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="serve")
def serve(cfg: DictConfig) -> None:
    def bundle() -> None:
        from litlab.runtime.server import serve_bundle  # onnxruntime and LitServe only

        serve_bundle(cfg.bundle, cfg.port, cfg.max_request_mb)

    def checkpoint() -> None:
        from litlab.inference.serve_checkpoint import serve_checkpoint

        serve_checkpoint(cfg.ckpt_path, cfg.paths.log_dir, cfg.port, cfg.max_request_mb)

    bundle_or_checkpoint(cfg, bundle, checkpoint)


def bundle_or_checkpoint(cfg: DictConfig, bundle: Callable[[], None], checkpoint: Callable[[], None]) -> None:
    """predict and serve: exactly one of ckpt_path (PyTorch) and bundle (onnxruntime alone, no torch)."""
    exit_on_user_error(lambda: one_model(cfg.ckpt_path, cfg.bundle), cfg.extras.traceback)
    exit_on_user_error(bundle if cfg.bundle is not None else checkpoint, cfg.extras.traceback)


@dataclass(frozen=True)
class Command:
    main: Callable[[], object]  # a @hydra.main function: it reads sys.argv
    config_name: str  # its primary config in conf/, for the fast --help
    takes_bundle: bool = False  # bundle=DIR runs without torch: Hydra's Lightning-importing callbacks go


COMMANDS = {
    "train": Command(train, "train"),
    "evaluate": Command(evaluate, "eval"),
    "predict": Command(predict, "predict", takes_bundle=True),
    "export": Command(export, "export"),
    "serve": Command(serve, "serve", takes_bundle=True),
}


def run(verb: str, argv: list[str]) -> None:
    """`litlab VERB ARGV` or `python VERB.py ARGV`: the plain --help answered here (fast), anything
    else by Hydra, which reads the arguments from sys.argv (its first item stays: Hydra's shell
    completion names the program by it)."""
    command = COMMANDS[verb]
    os.environ.setdefault(*HUGE_PAGES)  # before torch is imported (by the job or Hydra's callbacks)
    if command.takes_bundle and names_bundle(argv):
        argv = [*argv, *without_callbacks(CONF_DIR)]
    elif not SHOWS_ONLY & set(argv):  # before Hydra's callbacks, which import Lightning
        note = " (a bundle, bundle=DIR, runs without them)" if command.takes_bundle else ""
        exit_on_user_error(lambda: require_extra(f"litlab {verb}", "train", note))
    if not answer_help(command.config_name, argv):
        sys.argv = [sys.argv[0], *argv]
        os.environ[RANKS_VERB] = verb  # for the DDP ranks Lightning starts from this process
        command.main()

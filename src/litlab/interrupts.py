"""Ctrl-C (SIGINT) and SIGTERM (what SLURM and `kill` send first): the run stops, saves its
state and says so in metrics.json, instead of vanishing (SIGTERM) or exiting 1 with no record
(Lightning turns a KeyboardInterrupt during fit into `sys.exit(1)`)."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


class Interrupted(BaseException):
    """The run was stopped by `signal_name`. A BaseException, like KeyboardInterrupt: no
    `except Exception` on the way out may swallow it. The process exits with 128 + the signal's
    number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by it."""

    def __init__(self, signal_name: str, epochs_completed: int | None = None, checkpoint: str | None = None) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name, self.epochs_completed, self.checkpoint = signal_name, epochs_completed, checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + signal.Signals[self.signal_name].value


def signal_name(exception: BaseException) -> str | None:
    """Which signal `exception` stands for, if any."""
    if isinstance(exception, Interrupted):
        return exception.signal_name
    if isinstance(exception, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(exception, SIGTERMException):  # Lightning's own, when our handler is not installed
        return "SIGTERM"
    return None


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside: SIGTERM raises Interrupted where the program is, as SIGINT raises KeyboardInterrupt.
    Lightning's own SIGTERM handler, installed during fit, calls this one after its own."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class InterruptCheckpoint(L.Callback):
    """Saves `dirpath/interrupted.ckpt`, the state at the moment a SIGINT or SIGTERM stopped
    fit (or validate, test), and keeps what happened for metrics.json (`interrupted`)."""

    FILENAME = "interrupted.ckpt"

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.interrupted: Interrupted | None = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        name = signal_name(exception)
        if name is None or self.interrupted is not None:
            return
        path = self.dirpath / self.FILENAME
        trainer.save_checkpoint(path, weights_only=False)  # the full state: weights, optimizer, loops
        self.interrupted = Interrupted(name, epochs_completed=trainer.current_epoch, checkpoint=str(path))

    @contextmanager
    def recorded(self) -> Iterator[None]:
        """Around a Trainer call: an interrupt leaves it as the Interrupted this callback recorded,
        whatever Lightning raised instead (SystemExit(1) for Ctrl-C)."""
        try:
            yield
        except (SystemExit, KeyboardInterrupt, Interrupted):
            if self.interrupted is None:
                raise
            raise self.interrupted from None

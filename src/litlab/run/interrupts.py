"""Ctrl-C (SIGINT) and SIGTERM (what SLURM and `kill` send first): the run stops, saves its
state and says so in its record (metrics.json), instead of vanishing (SIGTERM) or exiting 1 with no record
(Lightning turns a KeyboardInterrupt during fit into `sys.exit(1)`)."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from litlab.checkpoints import store


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


class _Signals:
    """The signals received inside `signals_raise()`, and whether one waits for its training batch.

    Python runs a signal handler between two bytecodes of the main thread, which may be inside a
    finalizer (a __del__, a weakref callback); an exception raised there is printed as "Exception
    ignored" and lost. `received` keeps every signal, so that InterruptCheckpoint raises it again
    at the next batch and no Ctrl-C or SIGTERM goes unanswered.

    While the trainer trains (`deferring`), the first signal is only remembered: raised in the
    middle of a training batch it would leave the weights, the optimizer and the random
    generators part-way through a step, a state no resume can continue exactly. InterruptCheckpoint
    raises it at the end of the batch. A second signal stops at once (`forced`): the user insists."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.deferring = False
        self.forced = False

    def clear(self) -> None:
        self.received.clear()
        self.deferring = self.forced = False


_signals = _Signals()


def _raise_interrupted(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    _signals.received.append(name)
    if _signals.deferring and len(_signals.received) == 1:
        return  # raised at the end of the training batch in progress
    _signals.forced = _signals.deferring
    raise KeyboardInterrupt if signum == signal.SIGINT else Interrupted(name)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Inside: SIGINT raises KeyboardInterrupt and SIGTERM raises Interrupted, where the program is,
    or while the trainer trains at the end of the batch in progress (see _Signals). Lightning's own
    SIGTERM handler, installed during fit, calls this one after its own."""
    _signals.clear()
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        _signals.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


class InterruptCheckpoint(L.Callback):
    """Saves `dirpath/interrupted.ckpt` when a SIGINT or SIGTERM stops fit (or validate, test), and
    keeps what happened for the run's record (`interrupted`). A signal during training is answered at
    the end of the training batch in progress (or when training ends, whichever comes first), so
    that the checkpoint is the state between two batches: resumed, the run ends exactly as an
    uninterrupted one. A second signal stops at once and saves nothing (last.ckpt remains)."""

    FILENAME = store.INTERRUPTED

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.interrupted: Interrupted | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _signals.deferring = True

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raise_received()

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if batch_idx + 1 < trainer.num_training_batches:
            self._raise_received()

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raise_received()
        _signals.deferring = False

    def _raise_received(self) -> None:
        """Raise the signal received meanwhile (deferred, or its exception lost: see _Signals)."""
        if _signals.received and self.interrupted is None:
            _signals.deferring = False
            raise Interrupted(_signals.received[-1])

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        _signals.deferring = False
        name = signal_name(exception)
        if name is None or self.interrupted is not None:
            return
        if _signals.forced:  # stopped in the middle of a step: a state no resume could continue exactly
            self.interrupted = Interrupted(name, epochs_completed=trainer.current_epoch)
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

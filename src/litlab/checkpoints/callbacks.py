"""The checkpoints a run writes every epoch: the best one (ties broken, kept across a resume into a
new dir) and the last one (whatever the monitored metric did)."""

import logging
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from typing_extensions import override

from litlab.compat import best_checkpoint_moved

log = logging.getLogger(__name__)


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose best checkpoint, on a tie of the monitored metric (val/acc often
    ties on a small validation set), moves to the later epoch only if `tie_breaker` is lower there."""

    def __init__(self, *args, tie_breaker: str = "val/loss", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tie_breaker = tie_breaker
        self.best_tie_breaker: float | None = None  # tie_breaker's value at the best checkpoint

    @override
    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        better = super().check_monitor_top_k(trainer, current)
        tie_value = trainer.callback_metrics.get(self.tie_breaker)
        best = self.best_model_score
        if not better and self.save_top_k == 1 and best is not None and current is not None and tie_value is not None:
            tie = bool(current == best.to(current.device))
            lower = self.best_tie_breaker is not None and float(tie_value) < self.best_tie_breaker
            better = trainer.strategy.reduce_boolean_decision(tie and lower)
        if better and tie_value is not None:
            self.best_tie_breaker = float(tie_value)
        return better

    @override
    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_tie_breaker": self.best_tie_breaker}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        # Resumed into a new run dir, Lightning would keep only the old best's path and forget its
        # score, and the resumed run's "best" would be the best of its own epochs. Instead the old
        # best is copied into this run's dir, with its score: the best stays the best of the whole run.
        old_dir, best = state_dict.get("dirpath"), state_dict.get("best_model_path")
        if self.dirpath and old_dir != self.dirpath and best:
            state_dict = self._carried_over(state_dict, Path(best))
        super().load_state_dict(state_dict)
        self.best_tie_breaker = state_dict.get("best_tie_breaker")

    def _carried_over(self, state_dict: dict, best: Path) -> dict:
        if not best.is_file():
            log.warning("the best checkpoint before the resume, %s, is gone: the best is chosen among new epochs", best)
            return {**state_dict, "best_model_path": "", "best_tie_breaker": None}
        copy = Path(str(self.dirpath)) / best.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(best, copy)
        return best_checkpoint_moved(state_dict, copy)


class LastCheckpoint(ModelCheckpoint):
    """`dirpath/last.ckpt`: the state at the end of the latest epoch, rewritten every epoch
    whatever the monitored metric did (Lightning's `save_last` follows the best checkpoint).
    Resuming from it continues at the next epoch."""

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("dirpath") == self.dirpath:  # from another run's dir there is nothing to keep
            super().load_state_dict(state_dict)


def best_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that keeps the best checkpoint: the one watching a metric, wherever it stands
    in the callbacks config (Lightning's `trainer.checkpoint_callback` is merely the first). With
    none (callbacks=none), Lightning's default one, which keeps the latest epoch; never last.ckpt's."""
    every = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    kept = [c for c in every if not isinstance(c, LastCheckpoint)]
    return next((c for c in kept if c.monitor), next(iter(kept), None))

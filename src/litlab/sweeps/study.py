"""An Optuna study's storage and pruner, opened alike by the sweeper (hydra_plugins/litlab_sweepers)
and by each trial's job (litlab.sweeps.pruning). Light to import: Hydra imports the sweeper plugin, and so
this module, even for `--help`; optuna itself is imported only when called."""

from typing import TYPE_CHECKING

from litlab.errors import UserError

if TYPE_CHECKING:
    import optuna

JOURNAL = "journal:"


def open_storage(storage: str | None) -> "str | optuna.storages.BaseStorage | None":
    """`journal:PATH`: Optuna's journal file (JournalStorage + JournalFileBackend), the storage
    its docs give for many workers on a shared file system such as NFS; an RDB URL (sqlite:///,
    postgresql://...) as it is; None: in memory, no resume."""
    if storage is not None and storage.startswith(JOURNAL):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(storage.removeprefix(JOURNAL)))
    return storage


def make_pruner(name: str, args: dict | None = None) -> "optuna.pruners.BasePruner":
    """Optuna's pruner of that name, with Optuna's defaults unless `args` (keyword arguments of its
    class) says otherwise. The sweeper and every job build the same one: a pruner decides from
    the trials in the storage, not from its own state."""
    from optuna import pruners

    classes = {
        "none": pruners.NopPruner,
        "median": pruners.MedianPruner,
        "hyperband": pruners.HyperbandPruner,
        "successive_halving": pruners.SuccessiveHalvingPruner,
    }
    if name not in classes:
        raise UserError(f"hydra.sweeper.pruner={name!r} is not a pruner; use one of {', '.join(classes)}")
    # NopPruner takes no arguments: pruner_args that a preset sets for its pruner are moot with none.
    kwargs = {} if name == "none" else (args or {})
    try:
        return classes[name](**kwargs)
    except TypeError as e:
        raise UserError(f"hydra.sweeper.pruner_args={args}: {e}; see optuna.pruners.{classes[name].__name__}") from None

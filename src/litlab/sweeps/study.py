"""An Optuna study's storage and pruner, opened alike by the sweeper (hydra_plugins/litlab_sweepers)
and by each trial's job (litlab.sweeps.pruning); the search's settings checked; what the study says
of its parameters. Light to import: Hydra imports the sweeper plugin, and so
this module, even for `--help`; optuna itself is imported only when called."""

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from litlab import files
from litlab.errors import UserError
from litlab.values import is_int

if TYPE_CHECKING:
    import optuna

JOURNAL = "journal:"
SQLITE = "sqlite:///"
STUDY_FILE = "optuna_study.json"  # in each worker's sweep dir: where its study lives
SCHEMA_ATTEMPTS = 3  # opening a new RDB storage, which several workers may be creating at once


def open_storage(
    storage: str | None, heartbeat_interval: int | None = None, grace_period: int | None = None, max_retry: int = 0
) -> "optuna.storages.BaseStorage | None":
    """`journal:PATH`: Optuna's journal file (JournalStorage + JournalFileBackend), the storage
    its docs give for many workers on a shared file system such as NFS; an RDB URL (sqlite:///,
    postgresql://...) as an RDBStorage; given a `heartbeat_interval` (s), one whose
    RUNNING trials without a heartbeat for `grace_period` s are failed and run again with the same
    parameters (up to `max_retry` times) by whichever worker next asks for a trial; None: in
    memory, no resume. Journal files have no heartbeat in Optuna."""
    if storage is not None and storage.startswith(JOURNAL):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(storage.removeprefix(JOURNAL)))
    if storage is None:
        return None
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9: not the user's concern
        warnings.simplefilter("ignore", ExperimentalWarning)
        beats = {} if heartbeat_interval is None else {
            "heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
            "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
        }  # fmt: skip
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return RDBStorage(storage, engine_kwargs=waiting_engine(storage), **beats)  # type: ignore[arg-type]
            except (IntegrityError, OperationalError, ProgrammingError) as e:  # workers started together on a
                # new database: another one wrote the schema meanwhile (a row, or a table that "already exists")
                if attempt == SCHEMA_ATTEMPTS - 1 or not (isinstance(e, IntegrityError) or "already exists" in str(e)):
                    raise
                time.sleep(1.0)
    raise AssertionError("unreachable")


def waiting_engine(url: str) -> dict:
    """SQLAlchemy engine arguments: SQLite waits up to a minute for another worker's write to end
    (its default, 5 s, fails a busy worker with "database is locked")."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


# Each count of the search: the smallest valid value, and whether null is valid (no heartbeat;
# Optuna's grace period, twice the interval).
COUNTS = {"n_trials": (1, False), "n_jobs": (1, False), "heartbeat_interval": (1, True), "grace_period": (1, True),
          "max_retry": (0, False)}  # fmt: skip


def check_counts(values: dict[str, object]) -> None:
    """The search's counts (keys of COUNTS): whole numbers from their smallest valid value."""
    for name, value in values.items():
        least, nullable = COUNTS[name]
        if not ((value is None and nullable) or (is_int(value) and value >= least)):
            raise UserError(
                f"hydra.sweeper.{name}={value!r} is invalid: give a whole number >= {least}"
                f"{' or null' if nullable else ''}, e.g. hydra.sweeper.{name}={max(least, 2)}"
            )


def check_names(storage: object, study_name: object) -> None:
    """The storage and the study's name as each trial's job gets them: text its override can quote."""
    for key, value in (("hydra.sweeper.storage", storage), ("hydra.sweeper.study_name", study_name)):
        if value is not None and (not isinstance(value, str) or "'" in value or "\\" in value):
            raise UserError(
                f"{key}={value!r} is invalid: give text without quotes or backslashes (each trial's job gets it "
                "as an override)"
            )


def driver_reason(error: BaseException) -> str:
    """The first line of why a storage failed: beneath SQLAlchemy's error, the database driver's own."""
    return str(getattr(error, "orig", None) or error).splitlines()[0]


def unusable_storage(storage: str | None, error: BaseException) -> UserError:
    return UserError(
        f"hydra.sweeper.storage={storage!r} cannot be opened: {driver_reason(error)}; give sqlite:///PATH or "
        "journal:PATH in an existing dir, or an RDB URL that is reachable and whose driver is installed"
    )


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


def check_same_settings(study: "optuna.Study", fixed: list[str]) -> None:
    """A study resumes only under the settings its trials ran with (the command line's overrides
    outside the search space): trials of 5 and of 15 epochs would be compared as if alike."""
    before = next((t.user_attrs["fixed_overrides"] for t in study.trials if "fixed_overrides" in t.user_attrs), None)
    if before is None or sorted(before) == sorted(fixed):
        return
    was, now = sorted(set(before) - set(fixed)), sorted(set(fixed) - set(before))
    raise UserError(
        f"study {study.study_name!r} ran its trials with {' '.join(was) or 'no such override'}, this command gives "
        f"{' '.join(now) or 'none of them'}; start a new study with a new hydra.sweep.dir= (or "
        "hydra.sweeper.study_name=), or resume this one with its own settings"
    )


def importances(study: "optuna.Study") -> dict[str, float] | None:
    """Each searched parameter's share of the variance of the objective over the completed trials
    (Optuna's fANOVA, seeded: the same trials give the same shares), most important first; None
    with fewer than two completed trials or nothing that varied."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = sorted({name for t in complete for name, d in t.distributions.items() if not d.single()})
    if len(complete) < 2 or not searched:
        return None
    try:
        shares = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=searched)
    except (ValueError, RuntimeError):  # no parameter common to the completed trials, or none varied
        return None
    return {name: float(share) for name, share in shares.items()} or None


def write_study_file(sweep_dir: Path, study_name: str, storage: str) -> None:
    """Where the search of `sweep_dir` keeps its study: the report of any worker's dir reads every
    trial from there (litlab.sweeps.jobs), also from another working dir."""
    files.write_json(sweep_dir / STUDY_FILE, {"study_name": study_name, "storage": absolute_storage(storage)})


def storage_file(storage: str) -> tuple[str, str] | None:
    """(prefix, path) of a file storage (journal:PATH, sqlite:///PATH); None for a server's URL."""
    prefix = next((p for p in (JOURNAL, SQLITE) if storage.startswith(p)), None)
    return None if prefix is None else (prefix, storage.removeprefix(prefix))


def absolute_storage(storage: str) -> str:
    """A file storage with its path made absolute; other URLs, a query or SQLite's :memory: as given."""
    found = storage_file(storage)
    if found is None or not found[1] or "?" in found[1] or found[1] == ":memory:":
        return storage
    prefix, path = found
    return prefix + str(Path(path).resolve())


def read_study_file(sweep_dir: Path) -> tuple[str, str] | None:
    """The study's name and storage that `sweep_dir`'s search recorded; None for a grid sweep's dir."""
    try:
        where = json.loads((sweep_dir / STUDY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(where, dict) or not all(isinstance(where.get(k), str) for k in ("study_name", "storage")):
        return None  # not litlab's file
    return where["study_name"], where["storage"]


def stored_study(study_name: str, storage: str) -> "optuna.Study":
    """The study as it is now, read only: a file storage that is gone is a FileNotFoundError (Optuna
    would create an empty one)."""
    import optuna

    found = storage_file(storage)
    if found is not None and not Path(found[1]).is_file():
        raise FileNotFoundError(f"no such file: {found[1]}")
    opened = open_storage(storage)
    assert opened is not None  # only no storage at all (None) opens as None
    return optuna.load_study(study_name=study_name, storage=opened)

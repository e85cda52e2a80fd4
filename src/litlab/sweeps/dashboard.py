"""Optuna's dashboard over the study of an Optuna sweep: litlab dashboard SWEEP_DIR [--port 8080]

Serves http://127.0.0.1:PORT/ (localhost only) until Ctrl-C. The study's storage is the one the
search recorded when it started (optuna_study.json) or when it ended (best.yaml), else the sweep
dir's optuna.db (the hparams_search presets' default). A dir
without a study, a storage that cannot be read, and a port that is no port or is taken are one
line (exit 2) before the server starts.
"""

import argparse
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from litlab.errors import UserError, exit_on_user_error
from litlab.ports import free_port
from litlab.sweeps.study import read_study_file


def storage_of(sweep_dir: Path) -> str:
    """The sweep's Optuna storage URL, or a UserError saying where it looked."""
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir}: no such dir; give the dir of an Optuna sweep (hparams_search=...)")
    if (where := read_study_file(sweep_dir)) is not None:  # also while the search runs
        return where[1]
    best, db = sweep_dir / "best.yaml", sweep_dir / "optuna.db"
    recorded = recorded_storage(best) if best.is_file() else None
    if recorded:
        return recorded
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    raise UserError(f"{sweep_dir}: no best.yaml with a storage and no optuna.db; give the dir of an Optuna sweep")


def recorded_storage(best: Path) -> str | None:
    try:
        recorded = OmegaConf.load(best)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(
            f"{best} cannot be read ({type(e).__name__}); move it away to use the sweep dir's optuna.db"
        ) from None
    storage = recorded.get("storage") if isinstance(recorded, DictConfig) else None
    return str(storage) if storage else None


def studies_in(storage: str) -> object:
    """The opened storage, which holds at least one study: optuna-dashboard would serve an empty
    page for none, and a traceback per request for a storage it cannot read."""
    from sqlalchemy.exc import SQLAlchemyError

    from litlab.sweeps.study import driver_reason, open_storage

    try:
        import optuna

        opened = open_storage(storage)
        assert opened is not None  # only no storage at all (None) opens as None
        studies = optuna.get_all_study_names(opened)
    except (SQLAlchemyError, ValueError, OSError, RuntimeError) as e:
        raise UserError(f"the study's storage {storage} cannot be read: {driver_reason(e)}") from None
    if not studies:
        raise UserError(f"the storage {storage} holds no study; run the Optuna sweep first (hparams_search=...)")
    return opened


def main(verb: str, argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog=f"litlab {verb}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("sweep_dir", type=Path, help="e.g. logs/train/hparams_search/digits_mlp")
    p.add_argument("--port", default="8080", help="on 127.0.0.1 (default 8080)")
    args = p.parse_args(argv)
    port = exit_on_user_error(lambda: free_port(args.port, "--port {}"))
    storage = exit_on_user_error(lambda: storage_of(args.sweep_dir))
    opened = exit_on_user_error(lambda: studies_in(storage))  # imports optuna: after the cheap checks
    import optuna_dashboard  # it imports its web stack

    print(f"Optuna dashboard for {storage} at http://127.0.0.1:{port}/", flush=True)
    optuna_dashboard.run_server(opened, host="127.0.0.1", port=port)

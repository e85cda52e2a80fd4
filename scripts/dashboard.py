"""Optuna's dashboard over the study of an Optuna sweep: python scripts/dashboard.py SWEEP_DIR

Serves http://127.0.0.1:PORT/ (localhost only) until Ctrl-C. The study's storage is the one
best.yaml records, else the sweep dir's optuna.db (the hparams_search presets' default).
"""

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf


def storage_of(sweep_dir: Path) -> str:
    """The sweep's Optuna storage URL, or exit with one line saying where it looked."""
    best, db = sweep_dir / "best.yaml", sweep_dir / "optuna.db"
    recorded = OmegaConf.load(best).get("storage") if best.exists() else None
    if recorded:
        return str(recorded)
    if db.exists():
        return f"sqlite:///{db.resolve()}"
    sys.exit(f"{sweep_dir}: no best.yaml with a storage and no optuna.db; give the dir of an Optuna sweep")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path, help="e.g. logs/train/hparams_search/digits_mlp")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args()
    storage = storage_of(args.sweep_dir)
    import optuna_dashboard  # after the checks: it imports optuna and its web stack

    from litlab.sweeps.study import open_storage

    print(f"Optuna dashboard for {storage} at http://127.0.0.1:{args.port}/", flush=True)
    optuna_dashboard.run_server(open_storage(storage), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()

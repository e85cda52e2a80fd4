"""MLflow beside (or instead of) TensorBoard: `logger=mlflow`, `logger=[tensorboard,mlflow]`.

The store is a local SQLite file (`${paths.log_dir}/mlflow.db`): MLflow 3.13 and later refuse the
file store that Lightning's MLFlowLogger defaults to. MLflowStore, a Hydra callback, creates it
(its schema and the experiment) once before any job starts, so parallel jobs never race to
create it, and checks that it can be written (not locked by another writer, not read-only, an
SQLite file): a store no run could log to is one line before any job. Each run is named as
TensorBoard names it; its params are the settings the HParams tab shows, its metrics the
per-epoch curves with their steps plus the best checkpoint's final ones (`best/...`), and its
artifacts config.yaml, metrics.json and data_report.json from the run dir, with the run dir and
the best checkpoint's path as tags. `litlab mlflow-ui` opens it.
"""

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig
from typing_extensions import override

from litlab.errors import UserError, exit_on_user_error
from litlab.files.run_record import RECORD
from litlab.review.tensorboard import Value, run_name

ARTIFACTS = ("config.yaml", RECORD, "data_report.json")


def store_uri(store: str | Path) -> str:
    return f"sqlite:///{Path(store).resolve()}"


class MLflowRun(MLFlowLogger):
    """Lightning's MLFlowLogger on the SQLite store `store`, the run named as TensorBoard's.
    Metrics logged after fit (the best checkpoint's validate and test) are left out of the curves:
    log_final records them once, as `best/<metric>`."""

    def __init__(self, store: str, artifact_root: str, experiment_name: str, output_dir: str) -> None:
        name = run_name() if HydraConfig.initialized() else "default"
        super().__init__(
            experiment_name=experiment_name,
            run_name=name,
            tracking_uri=store_uri(store),
            artifact_location=Path(artifact_root).resolve().as_uri(),
            tags={"run_dir": str(Path(output_dir).resolve())},
        )
        self.fit_ended = False

    @override
    def log_hyperparams(self, params: Any) -> None:
        """Lightning passes the model's constructor arguments (task, input shape, train rows...);
        the run's params are the settings HParams shows instead, from log_final."""

    @override
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.fit_ended:
            super().log_metrics(metrics, step)

    @override
    def finalize(self, status: str = "success") -> None:  # Lightning calls this when fit (or a later stage) ends
        super().finalize(status)
        self.fit_ended = True

    def log_final(self, params: dict[str, Value], final: dict[str, float], best_ckpt: str | None) -> None:
        """The settings as params, the best checkpoint's metrics, and the run dir's record files."""
        from mlflow.entities import Metric, Param

        client, run_id = self.experiment, self.run_id
        client.log_batch(run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])
        client.log_batch(run_id, metrics=[Metric(f"best/{k}", float(v), 0, 0) for k, v in final.items()])
        if best_ckpt:
            client.set_tag(run_id, "best_ckpt", best_ckpt)

    def log_record(self, output_dir: Path) -> None:
        for name in ARTIFACTS:
            if (output_dir / name).is_file():
                self.experiment.log_artifact(self.run_id, str(output_dir / name))


class MLflowStore(Callback):
    """Creates the MLflow store of `logger.mlflow` and its experiment before the first job, in the
    process that starts them all: jobs that start together would each try to create the schema.
    `wait_s`: how long to wait for another process's write to the store to end."""

    def __init__(self, wait_s: float = 5.0) -> None:
        self.wait_s = wait_s

    @override
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_user_error(lambda: self.create(config), config.get("extras", {}).get("traceback", False))

    @override
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_user_error(lambda: self.create(config), config.get("extras", {}).get("traceback", False))

    def create(self, config: DictConfig) -> None:
        node = (config.get("logger") or {}).get("mlflow")
        if node is None:
            return
        store = Path(node.store)
        try:  # first: MLflow takes a second to import
            store.parent.mkdir(parents=True, exist_ok=True)
            if store.exists():
                check_writable(store, self.wait_s)
        except (OSError, sqlite3.Error) as e:
            raise unwritable(store, e) from None
        try:
            from mlflow import MlflowClient  # only where MLflow is asked for
            from mlflow.exceptions import MlflowException
            from sqlalchemy.exc import SQLAlchemyError
        except ImportError:
            raise UserError(
                "logger=mlflow needs the mlflow package: pip install 'mlflow>=3.4,<4' (it is in requirements.txt)"
            ) from None
        try:
            client = MlflowClient(tracking_uri=store_uri(store))  # opening the store creates its schema
            if client.get_experiment_by_name(node.experiment_name) is None:
                artifacts = Path(node.artifact_root).resolve().as_uri()
                client.create_experiment(node.experiment_name, artifact_location=artifacts)
        except (OSError, MlflowException, SQLAlchemyError) as e:
            raise unwritable(store, e) from None


def check_writable(store: Path, wait_s: float) -> None:
    """A write to the SQLite file `store`, rolled back: a lock another process holds for longer than
    `wait_s`, a read-only file or disk, or a file that is no database fails here, as MLflow's first
    write of a run would."""
    with closing(sqlite3.connect(f"file:{store}?mode=rw", uri=True, timeout=wait_s, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")  # the write lock
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute(f"PRAGMA user_version = {int(version)}")  # rewrites the header page
        finally:
            db.execute("ROLLBACK")


def unwritable(store: Path, error: BaseException) -> UserError:
    return UserError(
        f"logger.mlflow.store={str(store)!r} cannot be written: {reason(error)}. If another process is writing to "
        "it, wait for it to finish; else log elsewhere: logger=tensorboard, or paths.log_dir=DIR for a store of its own"
    )


def reason(error: BaseException) -> str:
    """The first line of what went wrong: the OS's words, or SQLite's beneath MLflow's and SQLAlchemy's."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    driver = getattr(error, "orig", None) or getattr(error.__cause__, "orig", None)
    return str(driver or error).splitlines()[0]

"""An Optuna search on a real PostgreSQL server (Debian's package, started by the test on
127.0.0.1): the study and its trials are in the database, and the same command resumes it."""

import optuna
import pytest
from omegaconf import OmegaConf

from tests.helpers.config import QUICK
from tests.helpers.postgres import missing, postgres_server

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


def test_an_optuna_search_on_postgresql_keeps_its_trials_there_and_resumes(tmp_path, cli):
    sweep = tmp_path / "study"
    with postgres_server() as url:
        search = ["-m", "hparams_search=digits_mlp", *QUICK, "logger=none", f"hydra.sweep.dir={sweep}",
                  f"hydra.sweeper.storage={url}"]  # fmt: skip
        for n_trials in (1, 2):
            code, out, err = cli("train.py", *search, f"hydra.sweeper.n_trials={n_trials}")
            assert code == 0, err[-3000:]
        assert "1 trial(s) finished, 1 to go" in out + err
        study = optuna.load_study(study_name="digits_mlp", storage=url)
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
        assert OmegaConf.load(sweep / "best.yaml").storage == url
        assert not (sweep / "optuna.db").exists()

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


def test_two_workers_started_together_on_a_new_postgresql_study_share_it(tmp_path):
    """Two machines' workers, as two processes here: started at once on an empty database (both
    create Optuna's schema), one study between them, no trial failed, none run twice."""
    import subprocess
    import sys

    from tests.helpers.config import ROOT
    from tests.helpers.processes import started

    sweep, log = tmp_path / "study", tmp_path / "workers.log"
    with postgres_server() as url:
        cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=digits_mlp", *QUICK, "logger=none",
               f"hydra.sweep.dir={sweep}", f"hydra.sweeper.storage={url}", "hydra.sweeper.n_trials=4",
               "hydra.sweeper.pruner=none"]  # fmt: skip
        with open(log, "w") as out, started(cmd, cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT) as workers:
            codes = [worker.wait(timeout=420) for worker in workers]
        assert codes == [0, 0], log.read_text()[-3000:]
        states = [t.state.name for t in optuna.load_study(study_name="digits_mlp", storage=url).trials]
    assert set(states) == {"COMPLETE"} and 4 <= len(states) <= 5, states
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(len(states)))

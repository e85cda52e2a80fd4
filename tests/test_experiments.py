"""Each experiment preset reaches the result the README reports (full runs: `pytest -m slow`)."""

import pytest

from litlab.evaluation.reference import fit_reference_like, scores_on_test
from litlab.run.build import build_datamodule
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.data_files import REAL_DATA_DIR, needs_real_mnist

pytestmark = pytest.mark.e2e  # every test here runs a whole job

FLOORS = {
    "digits_mlp": ("test/acc", 0.97),
    "digits_cnn": ("test/acc", 0.98),
    "breast_cancer_logistic": ("test/acc", 0.95),
    "diabetes_linear": ("test/r2", 0.35),
    "synthetic_linear": ("test/r2", 0.99),
    "sine_mlp": ("test/r2", 0.90),
}
LINEAR = ("breast_cancer_logistic", "diabetes_linear", "synthetic_linear")
# On real MNIST (skipped without it); the CNN presets take 10+ minutes on 2 cores: scripts/tools/presets.py.
MNIST_FLOORS = {"mnist_fast": 0.99, "mnist_mlp": 0.98}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(FLOORS))
def test_preset_reaches_its_floor_and_scikit_learn(tmp_path, preset):
    """The floor, and scikit-learn on the same split: equal for the linear presets, at least
    LogisticRegression's accuracy (or least squares' R²) for the MLP and CNN ones."""
    cfg = compose_cfg(tmp_path, f"experiment={preset}", "extras.print_config=false", shrink=False)
    cfg.trainer.enable_progress_bar = False
    metric, floor = FLOORS[preset]
    test = train(cfg)["test"]
    assert test[metric] >= floor
    dm = build_datamodule(cfg)
    reference = scores_on_test(dm, fit_reference_like(dm, cfg.model))[metric]
    if preset in LINEAR:
        assert test[metric] == pytest.approx(reference, abs=0.005 if metric == "test/r2" else 1e-6)
    else:
        assert test[metric] >= reference


@pytest.mark.slow
@needs_real_mnist
@pytest.mark.parametrize("preset", sorted(MNIST_FLOORS))
def test_mnist_preset_reaches_its_floor(tmp_path, preset):
    cfg = compose_cfg(
        tmp_path, f"experiment={preset}", "extras.print_config=false", f"paths.data_dir={REAL_DATA_DIR}", shrink=False
    )
    cfg.trainer.enable_progress_bar = False
    assert train(cfg)["test"]["test/acc"] >= MNIST_FLOORS[preset]

"""The package layout: imports go downward only, and checkpoints written before the move still load."""

import ast
import shutil
from pathlib import Path

import pytest
from omegaconf import open_dict

from litlab.run.evaluate import evaluate
from tests.helpers.config import ROOT, compose_cfg

SRC = ROOT / "src" / "litlab"
# Lower layers first: a module may import from its own layer and the layers before it, never after.
LAYERS = [
    {"errors", "task", "compat", "hydra_job", "files", "ports", "values"},
    {"runtime"},  # prediction without torch: the ground floor only
    {"checkpoints"},
    {"data", "models"},
    {"review"},
    {"sweeps"},
    {"run"},
    {"deploy"},  # export and serving of checkpoints: run's loaders
]


def layer_of(module: str) -> int:
    """`litlab.review.console` -> the index of the layer holding `review`."""
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def litlab_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("litlab."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("litlab.")]
    return found


def test_every_module_sits_in_a_layer_and_imports_only_downward():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == SRC:
            continue
        module = "litlab." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        here = layer_of(module)
        upward += [f"{module} imports {m}" for m in litlab_imports(path) if layer_of(m) > here]
    assert not upward, upward


def test_a_checkpoint_written_before_the_move_still_evaluates(tmp_path):
    """tests/data/breast_cancer_logistic_v1.ckpt names its classes by their import paths of then."""
    ckpt = tmp_path / "old.ckpt"
    shutil.copy(ROOT / "tests" / "data" / "breast_cancer_logistic_v1.ckpt", ckpt)
    cfg = compose_cfg(tmp_path / "eval", f"ckpt_path={ckpt}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    test = evaluate(cfg)["test"]
    # The figures the run printed when it wrote the checkpoint.
    assert test["test/acc"] == pytest.approx(0.9651, abs=5e-5)
    assert test["test/f1"] == pytest.approx(0.9629, abs=5e-5)

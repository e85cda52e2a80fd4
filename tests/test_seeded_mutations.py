"""The suite's guarantees stay proven: each row of docs/faults.md's "What the tests prove" table names
a test and the one-line break ("mutation") it catches. Each mutation here is applied to a copy of the
tree and its test, run from that copy, must FAIL. A test that a refactor made unable to fail shows up
here, not in a user's run. The fast check below only reads the files: a refactor that moves a
mutated line is noticed in the fast suite too."""

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.config import ROOT

# What a run of the named tests needs; .venv, .git and logs stay behind.
TREE = ["src", "tests", "train.py", "evaluate.py", "predict.py", "export.py", "serve.py", "pyproject.toml"]
TIMEOUT_S = 300


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in `path`
    new: str
    test: str  # the pytest node id that must fail under it


WRITE_WITH = ("src/litlab/files/__init__.py", "        write(temporary)\n", "        write(Path(path))\n")
BF16 = (
    "src/litlab/run/build.py",
    "        enable_model_summary=False,\n",
    '        enable_model_summary=False,\n        precision="32-true",\n',
)
CALLBACKS = "src/litlab/conf/callbacks/default.yaml"

MUTATIONS = [
    Mutation(
        "checkpoint_mode_min",
        CALLBACKS,
        "  mode: ${monitor.mode}\n  tie_breaker:",
        "  mode: min\n  tie_breaker:",
        "tests/test_directions.py::test_the_best_checkpoint_maximises_val_acc_that_peaks_before_the_last_epoch",
    ),
    Mutation(
        "early_stopping_mode_min",
        CALLBACKS,
        "  mode: ${monitor.mode}\n  patience:",
        "  mode: min\n  patience:",
        "tests/test_directions.py::test_early_stopping_on_val_acc_stops_patience_epochs_after_its_highest_epoch",
    ),
    Mutation(
        "store_takes_newest_epoch",
        "src/litlab/checkpoints/store.py",
        "best = record.best_checkpoint_name if record is not None else None",
        'best = sorted(p.name for p in folder.glob("epoch_*.ckpt"))[-1] if record is not None else None',
        "tests/test_checkpoint_store.py::test_with_save_top_k_3_evaluate_and_predict_use_the_recorded_best",
    ),
    Mutation(
        "write_text_to_real_name",
        "src/litlab/files/__init__.py",
        "        temporary.write_text(text)\n",
        "        Path(path).write_text(text)\n",
        "tests/test_whole_files.py::test_a_write_that_fails_part_way_keeps_the_previous_content[write_text]",
    ),
    Mutation(
        "write_with_to_real_name",
        *WRITE_WITH,
        "tests/test_whole_files.py::test_a_write_that_fails_part_way_leaves_no_file_where_there_was_none[write_with]",
    ),
    Mutation(
        "checkpoint_io_to_real_name",
        "src/litlab/checkpoints/io.py",
        'with written_whole(Path(path)) as temporary, open(temporary, "wb") as f:',
        'with open(path, "wb") as f:',
        "tests/test_whole_files.py::test_a_write_that_fails_part_way_keeps_the_previous_content[checkpoint]",
    ),
    Mutation(
        "full_disk_write_with_to_real_name",
        *WRITE_WITH,
        "tests/test_whole_files.py::"
        "test_a_payload_that_fails_with_a_full_disk_is_disk_full_naming_the_file_and_writes_nothing",
    ),
    Mutation(
        "sweep_finished_check_false",
        "src/hydra_plugins/litlab_sweepers/sweepers.py",
        "unfinished_runs(batch, job_idx, self.kept if again else lambda *_: False)",
        "unfinished_runs(batch, job_idx, lambda *_: False)",
        "tests/test_sweep_resume.py::test_the_same_sweep_again_runs_none_of_its_finished_jobs_and_another_grid_is_refused",
    ),
    Mutation(
        "test_rows_in_train",
        "src/litlab/data/base.py",
        "        train_idx, val_idx, test_idx = self._split_indices(self.arrays.y)\n",
        "        train_idx, val_idx, test_idx = self._split_indices(self.arrays.y)\n"
        "        train_idx = np.concatenate([train_idx[:-4], test_idx[:4]])\n",
        "tests/test_data.py::test_split_is_70_15_15_stratified_and_disjoint",
    ),
    Mutation(
        "bf16_forced_32",
        *BF16,
        "tests/test_trainer_options.py::test_bf16_mixed_precision_trains_on_cpu",
    ),
    Mutation(
        "bf16_steps_forced_32",
        *BF16,
        "tests/test_steps.py::test_bf16_mixed_precision_gives_the_same_weights",
    ),
    Mutation(
        "l1_is_l2",
        "src/litlab/models/base.py",
        "w.abs().sum()",
        "w.pow(2).sum()",
        "tests/test_models.py::test_l1_penalty_makes_weights_sparser",
    ),
    Mutation(
        "nvml_undo_does_nothing",
        "src/litlab/compat.py",
        "    os.environ.pop(NVML_CHECK, None)\n",
        "    pass\n",
        "tests/test_compat.py::test_a_run_starts_without_the_nvml_check_lightning_set",
    ),
    Mutation(
        "cheap_hook_name_not_a_base",
        "src/litlab/models/base.py",
        "class SupervisedModule(CheapHookName, L.LightningModule):",
        "class SupervisedModule(L.LightningModule):",
        "tests/test_compat.py::test_lightning_still_sets_the_hook_name_we_make_cheap",
    ),
    Mutation(
        "user_error_as_traceback",
        "src/litlab/errors.py",
        "    raise SystemExit(USER_ERROR_EXIT)\n",
        "    raise error\n",
        "tests/test_user_errors.py::test_a_user_error_is_one_line_naming_the_key[seed=notanint]",
    ),
    Mutation(
        "checkpoint_loaded_with_pickle",
        "src/litlab/checkpoints/store.py",
        'return torch.load(path, map_location="cpu", weights_only=True)',
        'return torch.load(path, map_location="cpu", weights_only=False)',
        "tests/test_user_errors.py::test_a_user_error_is_one_line_naming_the_key[ckpt_path={evil}0]",
    ),
    Mutation(
        "resume_replays_the_whole_epoch",
        "src/litlab/data/batches.py",
        "skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch() else 0",
        "skip = 0",
        "tests/test_steps.py::test_a_mid_epoch_checkpoint_resumes_exactly",
    ),
    Mutation(
        "logistic_penalty_doubled",
        "src/litlab/models/linear.py",
        "self.l2 = 1.0 / (2.0 * C * self.train_size)",
        "self.l2 = 1.0 / (C * self.train_size)",
        "tests/test_reference.py::test_defaults_reach_scikit_learns_optimum[logistic_regression-breast_cancer-1thread]",
    ),
    Mutation(
        "bundle_inputs_not_shifted",
        "src/litlab/data_spec.py",
        "return (x.astype(np.float32) - self.shift) / self.scale",
        "return x.astype(np.float32) / self.scale",
        "tests/test_export.py::test_predict_on_a_bundle_needs_no_torch_and_equals_the_checkpoints_predictions",
    ),
    Mutation(
        "bundle_inputs_not_scaled",
        "src/litlab/runtime/predict_files.py",
        "return predictor.outputs(predictor.scaler.apply(x))",
        "return predictor.outputs(x.astype(np.float32))",
        "tests/test_export.py::test_predict_on_a_bundle_needs_no_torch_and_equals_the_checkpoints_predictions",
    ),
    Mutation(
        "lr_find_suggests_the_lowest_loss",
        "src/litlab/run/lr_curve.py",
        "steep = int(np.argmin(slope[: lowest + 1]))",
        "steep = lowest",
        "tests/test_lr_find.py::test_suggestions_on_noisy_curves_stay_near_the_best_rate[0]",
    ),
    Mutation(
        "every_metric_maximised",
        "src/litlab/models/metrics.py",
        '    return "max" if higher else "min"',
        '    return "max"',
        "tests/test_directions.py::test_the_best_checkpoint_minimises_a_lower_is_better_metric",
    ),
    Mutation(
        "splits_not_stratified",
        "src/litlab/data/splits.py",
        "return y if self.labels is not None else None",
        "return None",
        "tests/test_data.py::test_split_is_70_15_15_stratified_and_disjoint",
    ),
]


def check_once(mutation: Mutation, text: str) -> None:
    count = text.count(mutation.old)
    assert count == 1, (
        f"mutation {mutation.name}: {mutation.old!r} occurs {count} times in {mutation.path}, not once; "
        f"the code it breaks has moved: update this mutation in tests/test_seeded_mutations.py (and docs/faults.md)"
    )


def table_tests() -> set[str]:
    """The node ids (parameters left off) in docs/faults.md's guarantee table."""
    doc = (ROOT / "docs" / "faults.md").read_text()
    table = doc.split("<!-- guarantees: begin -->")[1].split("<!-- guarantees: end -->")[0]
    return set(re.findall(r"`(tests/[\w/]+\.py::\w+)`", table))


def functions_in(path: str) -> set[str]:
    return {n.name for n in ast.walk(ast.parse((ROOT / path).read_text())) if isinstance(n, ast.FunctionDef)}


def test_each_mutation_applies_once_to_the_tree_and_the_table_has_one_for_each_test():
    for mutation in MUTATIONS:
        check_once(mutation, (ROOT / mutation.path).read_text())
        path, name = mutation.test.split("[")[0].split("::")
        assert (ROOT / path).is_file() and name in functions_in(path), f"{mutation.test} does not exist"
    mutated = {m.test.split("[")[0] for m in MUTATIONS}
    assert table_tests() and table_tests() <= mutated, f"table rows without a mutation: {table_tests() - mutated}"


def copy_tree(to: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in TREE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, to / name, ignore=ignore)
        else:
            shutil.copy2(source, to / name)


def run_env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE"))}
    env["PYTHONPATH"] = f"{copy / 'src'}:{copy}"  # ahead of the editable install's /work/.../src
    return env


# Each: a copy of the tree, then one test run in a fresh process (~5-40 s, the named test's own time).
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_named_test_fails_under_its_mutation(mutation: Mutation, tmp_path: Path):
    copy = tmp_path / "tree"
    copy.mkdir()
    copy_tree(copy)
    target = copy / mutation.path
    text = target.read_text()
    check_once(mutation, text)
    target.write_text(text.replace(mutation.old, mutation.new))
    env = run_env(copy)

    # The mutated code is the one imported: litlab and the sweeper plugin come from the copy.
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import litlab, hydra_plugins.litlab_sweepers.sweepers as s; print(litlab.__file__); print(s.__file__)",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert where == [str(copy / "src/litlab/__init__.py"), str(copy / "src/hydra_plugins/litlab_sweepers/sweepers.py")]

    cmd = [sys.executable, "-m", "pytest", mutation.test, "-p", "no:cacheprovider", "-q", "-x", "-n", "0"]
    out = subprocess.run(
        [*cmd, "-o", "addopts=", "--timeout", str(TIMEOUT_S)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S + 60,
    )
    # 1: the test ran and failed. 0 is a mutation that survived; 2, 3, 4, 5: an error, usage or no test found.
    assert out.returncode == 1, (
        f"{mutation.test} under {mutation.name} ({mutation.path}: {mutation.old!r} -> {mutation.new!r}) "
        f"exited {out.returncode}, expected 1 (the test failed)\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}"
    )
    assert " failed" in out.stdout.splitlines()[-1], out.stdout[-2000:]

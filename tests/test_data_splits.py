"""Every split holds every class, or the run is refused before training: a class the split leaves out
of val or test reports that split's AUROC or recall of it as 0 or undefined, and a test accuracy
without it, while the run looks fine. In every split mode: fractions, an official test set with a
val fraction, a given val set, k-fold."""

import numpy as np
import pytest

from litlab.data import CSVDataModule
from litlab.data.splits import MAX_SEED, Splitter, checked_seed, checked_split
from litlab.errors import USER_ERROR_EXIT, UserError
from tests.helpers.data_files import write_csv

RULE = "a stratified split needs at least one row of each class in each of train, val and test"
LABELS = ["common", "other", "rare"]


def labels(rare: int, rows: int = 62) -> np.ndarray:
    """Class ids of `rows` rows: `rare` rows of class 2, the others alternating 0 and 1."""
    return np.array([2] * rare + [i % 2 for i in range(rows - rare)])


def table(rare: int, rows: int = 62):
    import pandas as pd

    rng = np.random.default_rng(0)
    names = np.array(LABELS)[labels(rare, rows)]
    return pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows), "y": names})


@pytest.mark.parametrize("rare", [2, 3])
def test_a_class_too_small_for_the_split_refuses_the_run_in_one_line(tmp_path, cli, rare):
    """62 rows, one class of 2 or 3: val and test would get none of it, and the run would report
    test/acc of the other classes alone."""
    path = write_csv(tmp_path, table(rare))
    args = ["data=csv", f"data.path={path}", "data.target=y", "trainer=cpu", "logger=none"]
    code, out, err = cli("train.py", *args, f"hydra.run.dir={tmp_path / 'run'}", "extras.print_config=false")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == USER_ERROR_EXIT and len(lines) == 1 and "Traceback" not in out + err, err
    assert f"class 'rare' has only {rare} row(s)" in lines[0] and RULE in lines[0]
    assert "data.split=[0.7, 0.15, 0.15]" in lines[0] and "none of them in val and test" in lines[0]
    assert not list(tmp_path.rglob("*.ckpt")) and "test/acc" not in out


def test_a_class_with_enough_rows_is_in_every_split(tmp_path):
    dm = CSVDataModule(write_csv(tmp_path, table(5)), "y")
    for split in ("train", "val", "test"):
        assert LABELS.index("rare") in dm.split_labels(split).tolist()


@pytest.mark.parametrize(
    ("splitter", "y", "says"),
    [
        (Splitter((0.9, 0.05, 0.05), 0, labels=LABELS), labels(6),
         "data.split=[0.9, 0.05, 0.05], which puts none of them in"),
        # an official test set (the last 10 rows), val drawn from the rest: 2 rare rows left for train and val
        (Splitter((0.9, 0.1, 0.0), 0, num_test=10, labels=LABELS), np.r_[labels(2, 52), [0, 1, 2] * 3, [0]],
         "data.split=[0.9, 0.1, 0.0], which puts none of them in val"),
        # k-fold: 5 rare rows, one of them drawn into test, 4 left for 5 folds
        (Splitter((0.7, 0.15, 0.15), 0, num_folds=5, labels=LABELS), labels(5),
         "data.num_folds=5 is too many: class 'rare' has only 4 train+val row(s) of its 5"),
        # k-fold: 3 rare rows, none drawn into test
        (Splitter((0.7, 0.15, 0.15), 0, num_folds=3, labels=LABELS), labels(3),
         "with data.num_folds=3, which puts none of them in test"),
        # a given val set (data.path's val/ folder) without the class
        (Splitter((0.9, 0.1, 0.0), 0, num_test=6, num_val=6, labels=LABELS),
         np.r_[[0, 1] * 20, [2] * 4, [0, 1] * 3, [0, 1, 2] * 2], "has no row in the val set the data comes with"),
    ],
    ids=["fractions", "official-test", "k-fold", "k-fold-test", "given-val"],
)  # fmt: skip
def test_every_split_mode_refuses_a_class_it_would_leave_out(splitter, y, says):
    with pytest.raises(UserError, match="class 'rare'") as e:
        splitter.indices(y)
    assert says in str(e.value)


@pytest.mark.parametrize("num_folds", [0, 2, 3])
def test_a_split_that_is_returned_holds_every_class_in_every_part(num_folds):
    """The promise, over rare classes of 1..12 rows and several seeds: refused, or complete."""
    for rare in range(1, 13):
        for seed in range(4):
            try:
                parts = Splitter((0.7, 0.15, 0.15), seed, num_folds=num_folds, labels=LABELS).indices(labels(rare))
            except UserError as e:
                assert "class 'rare'" in str(e)
                continue
            for rows in parts:
                assert set(labels(rare)[rows]) == {0, 1, 2}, (rare, seed)


@pytest.mark.parametrize(
    ("splitter", "y", "about"),
    [
        # the smallest share is test's or val's 5%: 20 rows of the class put one in each
        (Splitter((0.9, 0.05, 0.05), 0, labels=LABELS), labels(6), 20),
        # an official test set: val's 10% of the rest is the smallest share
        (Splitter((0.9, 0.1, 0.0), 0, num_test=10, labels=LABELS), np.r_[labels(2, 52), [0, 1, 2] * 3, [0]], 10),
        # 10 folds of the 85% test leaves: each fold's val is 8.5%
        (Splitter((0.7, 0.15, 0.15), 0, num_folds=10, labels=LABELS), labels(1), 12),
        # 3 folds: test's 15% is smaller than a fold's 28%
        (Splitter((0.7, 0.15, 0.15), 0, num_folds=3, labels=LABELS), labels(3), 7),
        # a small train fraction: train's 10% is the smallest share
        (Splitter((0.1, 0.45, 0.45), 0, labels=LABELS), labels(1), 10),
        # given val and test sets: train, the only split drawn, takes every row of the class
        (Splitter((0.9, 0.1, 0.0), 0, num_test=6, num_val=6, labels=LABELS),
         np.r_[[0, 1] * 20, [0, 1, 2] * 2, [0, 1, 2] * 2], 1),
    ],
    ids=["fractions", "official-test", "10-folds", "3-folds", "small-train", "given-val-and-test"],
)  # fmt: skip
def test_the_refusal_advises_the_rows_of_the_class_the_smallest_split_needs(splitter, y, about):
    """'about N of each class': N rows of a class give its smallest drawn share at least one row."""
    with pytest.raises(UserError, match="class 'rare'") as e:
        splitter.indices(y)
    assert f"about {about} of each class" in str(e.value)


@pytest.mark.parametrize(
    ("y", "num_test", "says"),
    [
        (labels(5), 0, "class 'rare' has only 4 train+val row(s) of its 5, so some folds would lack it; "
                       "use data.num_folds <= 4"),
        (np.r_[[0, 1] * 20, [2, 2], [0, 1] * 5], 0, "class 'rare' has only 2 train+val row(s) of its 2, so some "
                                                    "folds would lack it; use data.num_folds <= 2"),
        # the class is only in the official test set: none in train+val, which no fold count fixes
        (np.r_[[0, 1] * 20, [0, 1, 2] * 2], 6, "class 'rare' has only 0 train+val row(s) of its 2, so some folds "
                                               "would lack it; add rows of it"),
    ],
    ids=["4-rows", "2-rows", "only-in-test"],
)  # fmt: skip
def test_too_many_folds_for_a_class_says_how_many_would_do(y, num_test, says):
    split = (0.9, 0.1, 0.0) if num_test else (0.7, 0.15, 0.15)
    splitter = Splitter(split, 0, num_folds=5, num_test=num_test, labels=LABELS)
    with pytest.raises(UserError, match="data.num_folds=5 is too many") as e:
        splitter.indices(y)
    assert says in str(e.value)


def test_a_split_is_three_fractions_adding_up_to_one_with_train_and_val_positive():
    assert checked_split([0.7, 0.15, 0.15], False, "x") == (0.7, 0.15, 0.15)
    assert checked_split((0.8, 0.2, 0), True, "mnist") == (0.8, 0.2, 0.0)  # an official test set: none drawn
    for split in ([0.5, 0.3, 0.3], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.6, 0.5, -0.1], [0.8, 0.2], None, "0.8,0.2,0",
                  [0.5, float("nan"), 0.5], [0.8, True, 0.2]):  # fmt: skip
        with pytest.raises(UserError, match=r"^data.split=.* is invalid: give three fractions \[train, val, test\]"):
            checked_split(split, False, "x")


def test_a_seed_is_a_32_bit_whole_number_named_by_its_setting():
    assert checked_seed(0) == 0 and checked_seed(MAX_SEED) == MAX_SEED
    for seed in (-1, MAX_SEED + 1, 1.0, True, "42"):
        with pytest.raises(UserError, match=rf"^data.seed={seed!r} is invalid: give an integer in 0..{MAX_SEED}"):
            checked_seed(seed)
    with pytest.raises(UserError, match=r"^seed=-1 is invalid"):
        checked_seed(-1, "seed")


@pytest.mark.parametrize(
    ("rows", "names", "refused"),
    [
        (20, LABELS, "gives the train split 2 row(s), fewer than the 3 classes"),  # test 9, val 9, train 2
        (5, None, "gives the train split 1 row(s), fewer than the 2 rows r2 needs"),  # test 2, val 2, train 1
        (6, None, None),  # 2 rows in each split: just enough for r2
        (9, LABELS, None),  # 3 rows in each split: one of each class
    ],
)
def test_each_split_drawn_by_fraction_must_hold_every_class_or_the_two_rows_r2_needs(rows, names, refused):
    split = (0.1, 0.45, 0.45) if rows == 20 else (1 / 3, 1 / 3, 1 / 3)
    splitter = Splitter(split=split, seed=0, labels=names)
    y = np.arange(rows) % 3 if names else np.linspace(0, 1, rows)
    if refused is None:
        train, val, test = splitter.indices(y)
        assert len(train) == len(val) == len(test) == rows // 3
        assert sorted([*train, *val, *test]) == list(range(rows))
        return
    with pytest.raises(UserError) as error:
        splitter.indices(y)
    assert str(error.value) == (
        f"data.split={list(split)} on {rows} rows {refused}: add rows, or give that split a larger fraction"
    )


def test_with_an_official_test_set_the_rows_a_class_needs_count_only_train_and_val():
    """The test rows are given: val draws 0.15 / 0.85 of the rest, so a class needs about 6 rows there
    (with the test fraction counted again it would say 7)."""
    y = np.array([0, 1] * 20 + [2] + [0, 1, 2] * 3)  # the last 9 rows: the official test set
    with pytest.raises(UserError, match="puts none of them in val: .* about 6 of each class here"):
        Splitter(split=(0.7, 0.15, 0.15), seed=0, num_test=9, labels=LABELS).indices(y)

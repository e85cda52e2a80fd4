"""A run's record (metrics.json) as one typed value: the records written before it existed read
back field by field and write out byte for byte as they were; keys of another version are kept,
missing ones default; a file that is not a record is refused by the readers as before."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from litlab.checkpoints import store
from litlab.files.run_record import RECORD, RunRecord, UnreadableRecord

# Records written before the record was one typed class (tests/data/README.md): a finished training run,
# a failed job, an interrupted one, a range test that only searched.
RECORDS_V1 = Path(__file__).parent / "data" / "records_v1"
KINDS = ("completed", "failed", "interrupted", "lr_find")


@pytest.mark.parametrize("kind", KINDS)
def test_a_record_written_before_reads_and_writes_back_byte_for_byte(kind, tmp_path):
    record = RunRecord.read(RECORDS_V1 / kind)
    assert record.status == kind if kind != "lr_find" else record.status == "completed"
    assert record.extra == {}  # every key of that layout is a field
    path = record.write(tmp_path)
    assert path == tmp_path / RECORD
    assert path.read_text() == (RECORDS_V1 / kind / RECORD).read_text()


def test_the_fields_of_records_written_before_have_their_types():
    done = RunRecord.read(RECORDS_V1 / "completed")
    assert done.finished and done.monitor == "val/loss" and done.mode == "min"
    assert done.optimized_metric == done.val["val/loss"] and done.test["test/acc"] == pytest.approx(0.9651, abs=1e-4)
    assert done.best_checkpoint_name == "epoch_000.ckpt" and done.resumed_from is None
    assert done.metrics == {**done.val, **done.test} and done.epochs == 2 and done.world_size == 1
    assert isinstance(done.provenance, dict) and done.provenance["seed"] == 42
    failed = RunRecord.read(RECORDS_V1 / "failed")
    assert not failed.finished and failed.error.startswith("FileNotFoundError") and "Traceback" in failed.traceback
    assert failed.val is None and failed.metrics == {} and failed.best_checkpoint_name is None
    stopped = RunRecord.read(RECORDS_V1 / "interrupted")
    assert (stopped.signal, stopped.epochs_completed) == ("SIGTERM", 3) and stopped.resume.startswith("python train")
    searched = RunRecord.read(RECORDS_V1 / "lr_find")
    assert searched.lr_find["override"] == "optimizer.lr=0.01" and searched.optimized_metric is None


def test_keys_of_another_version_are_kept_and_missing_ones_default(tmp_path):
    old = json.loads((RECORDS_V1 / "completed" / RECORD).read_text())
    newer = {**old, "energy_kwh": 0.5, "notes": {"by": "a later litlab"}, "extra": [1]}  # "extra": a key like any
    del newer["fit_time_s"], newer["provenance"]
    record = RunRecord.from_json(newer)
    assert record.extra == {"energy_kwh": 0.5, "notes": {"by": "a later litlab"}, "extra": [1]}
    assert record.fit_time_s is None and record.provenance is None
    record.write(tmp_path)
    assert json.loads((tmp_path / RECORD).read_text()) == newer
    assert RunRecord.from_json({"status": "completed"}) == RunRecord("completed")
    unsaid = RunRecord.from_json({"best_ckpt": "/runs/a/checkpoints/epoch_001.ckpt"})  # by hand: no status
    assert unsaid.status == "unknown" and not unsaid.finished and unsaid.best_checkpoint_name == "epoch_001.ckpt"


def test_facts_a_kind_of_record_states_are_written_as_null_and_others_left_out():
    interrupted = RunRecord("interrupted", signal="SIGINT").to_json()
    assert interrupted == {"status": "interrupted", "signal": "SIGINT", "epochs_completed": None, "checkpoint": None,
                           "last_ckpt": None, "resume": None, "overrides": []}  # fmt: skip
    trained = replace(RunRecord.read(RECORDS_V1 / "completed"), best_ckpt=None, optimized_metric=None).to_json()
    assert trained["best_ckpt"] is None and trained["optimized_metric"] is None and "error" not in trained
    assert "optimized_metric" not in RunRecord("failed", error="x").to_json()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Expecting value"),
        ('{"status": "completed", "val": {"val/lo', "Unterminated string"),
        ("[]", "^not a job's record \\(an object with status"),
        ('{"status": 3}', "its status is int"),
        ('{"status": "completed", "val": []}', "its val is list"),
        ('{"status": "completed", "overrides": "model=cnn"}', "its overrides is str"),
        ('{"status": "completed", "epochs": true}', "its epochs is bool"),
        ('{"status": "completed", "wall_time_s": false}', "its wall_time_s is bool"),  # a float field
        ('{"status": "completed", "wall_time_s": "12.5"}', "its wall_time_s is str"),
        (b"\xff\xfe{}", "codec can't decode byte 0xff"),
    ],
)
def test_a_file_that_is_not_a_record_is_refused_and_found_as_none(text, says, tmp_path):
    (tmp_path / RECORD).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UnreadableRecord, match=says):
        RunRecord.read(tmp_path)
    assert RunRecord.find(tmp_path) is None and not store.finished(tmp_path)


def test_no_record_is_a_missing_file_to_read_and_none_to_find(tmp_path):
    assert not RunRecord.exists(tmp_path)
    with pytest.raises(FileNotFoundError):
        RunRecord.read(tmp_path)
    assert RunRecord.find(tmp_path) is None

"""Image DataModules read the real file formats (tiny files written here), fail early on bad
files, and serve batches that are sharded, augmented and placed as documented."""

import gzip
import pickle
import socket

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler
from torchvision import datasets

from litlab.data import CIFAR10DataModule, DigitsDataModule, FashionMNISTDataModule, MNISTDataModule
from litlab.data.augment import BatchAugment
from litlab.data.batches import TensorBatches
from litlab.data.locate import DataFilesError
from tests.helpers.crafted import MakesADir
from tests.helpers.data_files import REAL_DATA_DIR, idx_bytes, needs_real_mnist, tiny_images, write_cifar10, write_mnist


@pytest.mark.parametrize("layout", ["torchvision", "flat-uncompressed"])
def test_mnist_reads_idx_files_and_keeps_the_official_test_set(tmp_path, layout):
    if layout == "torchvision":
        write_mnist(tmp_path / "MNIST" / "raw")
    else:
        write_mnist(tmp_path, gz=False)
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False, split=(0.8, 0.2, 0))
    dm.setup()
    assert dm.spec.input_shape == (1, 28, 28) and dm.spec.num_outputs == 10 and dm.task.value == "multiclass"
    x_test, y_test = tiny_images(20, (28, 28), seed=1)
    test = dm.split_tensors("test")
    assert test.x.dtype == torch.uint8  # stored as decoded bytes; scaled per batch
    assert torch.equal(test.x[:, 0], torch.from_numpy(x_test)) and torch.equal(test.y, torch.from_numpy(y_test).long())
    assert len(dm.split_tensors("train").y) == 80 and len(dm.split_tensors("val").y) == 20
    # The scaler saw the train split only.
    train_x = dm.split_tensors("train").x.double()
    assert dm.scaler.shift.item() == pytest.approx(train_x.mean().item(), rel=1e-4)


def test_a_truncated_file_fails_before_training_and_names_it(tmp_path):
    raw = write_mnist(tmp_path / "MNIST" / "raw")
    bad = raw / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-500])  # a cut-off download
    with pytest.raises(DataFilesError, match="train-images-idx3-ubyte.gz.*truncated or corrupt"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).setup()
    # A whole gzip stream whose idx payload is short: the header check catches it.
    x, _ = tiny_images(100, (28, 28), 0)
    bad.write_bytes(gzip.compress(idx_bytes(x)[:-28]))
    with pytest.raises(DataFilesError, match=r"header promises shape \(100, 28, 28\)"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).setup()


def test_missing_files_list_every_place_tried(tmp_path):
    with pytest.raises(DataFilesError) as e:
        MNISTDataModule(data_dir=str(tmp_path / "nowhere"), download=False).setup()
    msg = str(e.value)
    assert "nowhere/MNIST/raw: no such dir" in msg and "download: off" in msg and "data.data_dir" in msg


def unreachable_mirror() -> str:
    """A URL on 127.0.0.1 where nothing listens: a download from it fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("data_dir_exists", [False, True])
def test_a_failed_download_leaves_nothing_behind(tmp_path, data_dir_exists):
    class OfflineMNIST(datasets.MNIST):
        mirrors = [unreachable_mirror()]

    class OfflineMNISTDataModule(MNISTDataModule):
        torchvision_class = OfflineMNIST

    data_dir = tmp_path / "data"
    if data_dir_exists:
        data_dir.mkdir()
        (data_dir / "mine.csv").write_text("a,b\n")
    with pytest.raises(DataFilesError, match="download with torchvision: failed"):
        OfflineMNISTDataModule(data_dir=str(data_dir)).setup()
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["data", "mine.csv"] if data_dir_exists else [])


def test_fashion_mnist_falls_back_to_the_system_copy(tmp_path, monkeypatch):
    system = write_mnist(tmp_path / "usr-share-datasets-fashion-mnist")
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", (str(system),))
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "empty"), download=False)
    dm.setup()
    assert dm.class_names[0] == "T-shirt/top" and dm.files["train-images-idx3-ubyte"].parent == system


def test_cifar10_reads_python_batches_and_rejects_a_corrupt_one(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    dm = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    dm.setup()
    assert dm.spec.input_shape == (3, 32, 32) and len(dm.split_tensors("test").y) == 20
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataFilesError, match="data_batch_3 is not a readable CIFAR-10 batch"):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup()


def test_a_cifar10_batch_that_would_run_code_is_refused(tmp_path):
    folder = write_cifar10(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "marker"
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": MakesADir(str(marker)), b"labels": [0]}, f)
    with pytest.raises(
        DataFilesError, match=r"data_batch_2 is not a readable CIFAR-10 batch.*refused to load posix.mkdir"
    ):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup()
    assert not marker.exists()


def test_split_must_leave_the_official_test_set_alone(tmp_path):
    with pytest.raises(ValueError, match=r"fixed official test set, so give \[train, val, 0\]"):
        MNISTDataModule(data_dir=str(tmp_path), split=(0.7, 0.15, 0.15))


@needs_real_mnist
def test_real_mnist_loads_with_its_official_sizes():
    dm = MNISTDataModule(data_dir=str(REAL_DATA_DIR), download=False)
    dm.setup()
    sizes = {s: len(dm.split_tensors(s).y) for s in ("train", "val", "test")}
    assert sizes == {"train": 54000, "val": 6000, "test": 10000}
    assert dm.scaler.shift.item() == pytest.approx(33.3, abs=0.3)  # the well-known MNIST mean, 0.1307 * 255


# --- the batch path ---------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n", [50, 51])
def test_ddp_shards_match_distributed_sampler(shuffle, n):
    x, y = torch.arange(n).float()[:, None], torch.arange(n)
    for epoch in (0, 3):
        shards = []
        for rank in (0, 1):
            batches = TensorBatches(
                x, y, 8, shuffle, lambda t: t, seed=7, epoch=lambda e=epoch: e, rank=rank, world_size=2
            )
            ours = torch.cat([yb for _, yb in batches]).tolist()
            sampler = DistributedSampler(range(n), num_replicas=2, rank=rank, shuffle=shuffle, seed=7)
            sampler.set_epoch(epoch)
            assert ours == list(sampler)
            assert len(batches) == -(-len(ours) // 8)
            shards.append(ours)
        assert set(shards[0]) | set(shards[1]) == set(range(n))
        assert len(set(shards[0]) & set(shards[1])) == (n % 2)  # only the padding repeats


def test_augmentation_changes_train_batches_only():
    dm = DigitsDataModule(seed=0, batch_size="full")
    dm.augment = BatchAugment(crop_padding=2, rotate=15)
    train, val = dm.split_tensors("train"), dm.split_tensors("val")
    xb, _ = next(iter(dm.train_dataloader()))
    assert xb.shape == train.x.shape
    assert not torch.allclose(torch.sort(xb.flatten())[0], torch.sort(dm.scaler(train.x).flatten())[0])
    xv, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(xv, dm.scaler(val.x))


def test_random_crop_shifts_content_without_losing_it():
    x = torch.zeros(64, 1, 12, 12)
    x[:, :, 4:8, 4:8] = 1.0  # a square away from the border survives any shift of <= 2 px
    out = BatchAugment(crop_padding=2)(x)
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 1  # samples got different offsets
    flipped = BatchAugment(hflip=True)(torch.arange(12.0).expand(200, 1, 12, 12))
    firsts = flipped[:, 0, 0, 0]
    assert set(firsts.tolist()) == {0.0, 11.0}  # some flipped, some not


def test_augment_rejects_bad_settings():
    with pytest.raises(ValueError, match="translate=1.5 is invalid"):
        BatchAugment(translate=1.5)
    with pytest.raises(ValueError, match="crop_padding=-1"):
        BatchAugment(crop_padding=-1)


def test_data_device_is_checked():
    with pytest.raises(ValueError, match="data.device='tpu' is invalid; valid: auto, cpu, cuda"):
        DigitsDataModule(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            DigitsDataModule(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_auto_device_keeps_the_data_on_the_gpu():
    import lightning as L

    dm = DigitsDataModule()
    trainer = L.Trainer(accelerator="gpu", devices=1, logger=False)
    dm.trainer = trainer
    batches = dm.train_dataloader()
    assert batches.x.device.type == "cuda"
    assert next(iter(batches))[0].device.type == "cuda"
    dm_cpu = DigitsDataModule(device="cpu")
    dm_cpu.trainer = trainer
    b = dm_cpu.train_dataloader()
    assert b.x.device.type == "cpu" and next(iter(b))[0].device.type == "cuda"
    assert np.isfinite(next(iter(b))[0].cpu().numpy()).all()

"""data=image_folder: a user's own pictures in class folders, trained, evaluated and predicted."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import open_dict
from PIL import Image
from torchvision.io import write_jpeg, write_png

from litlab.data import ImageCSVDataModule, ImageFolderDataModule, MNISTDataModule, image_folder
from litlab.data_spec import InputKind
from litlab.errors import UserError
from litlab.inference.checkpoint import predict
from litlab.readers import images
from litlab.run.evaluate import evaluate
from litlab.run.train import train
from tests.helpers.config import compose_cfg
from tests.helpers.data_files import REAL_DATA_DIR, needs_real_mnist, write_image_folder

NAMES = sorted(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("pictures") / "digits")


def test_class_folders_become_classes_sorted_as_torchvision_does(folder):
    dm = ImageFolderDataModule(path=str(folder))
    spec = dm.spec
    assert spec.kind is InputKind.IMAGE and spec.input_shape == (1, 8, 8)
    assert spec.class_names == tuple(NAMES) and spec.num_outputs == 10
    sizes = [len(dm.split_tensors(s).y) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[2] == pytest.approx(0.15 * 1797, abs=2)  # the stratified 70/15/15
    # The pixels are the files' own, as uint8, in class-folder order.
    x = dm.arrays.x
    assert x.dtype.name == "uint8" and x.max() == 255


def test_train_val_test_folders_are_the_split(tmp_path):
    root = write_image_folder(tmp_path / "splits", layout="splits", per_class=20)
    dm = ImageFolderDataModule(path=str(root))
    counts = {s: sum(1 for _ in (root / s).rglob("*.png")) for s in ("train", "val", "test")}
    assert {s: len(dm.split_tensors(s).y) for s in counts} == counts
    test_files = sorted((root / "test").rglob("*.png"))
    assert [NAMES[int(i)] for i in dm.split_tensors("test").y] == [f.parent.name for f in test_files]


def test_channels_and_size_follow_most_files_and_can_be_set(tmp_path):
    root = tmp_path / "mixed"
    for name, shade in (("dark", 40), ("light", 200)):
        (root / name).mkdir(parents=True)
        for i in range(6):  # 6 gray 20x20 PNGs and 2 RGB 30x24 JPEGs per class
            write_png(torch.full((1, 20, 20), shade, dtype=torch.uint8), str(root / name / f"g{i}.png"))
        for i in range(2):
            write_jpeg(torch.full((3, 30, 24), shade, dtype=torch.uint8), str(root / name / f"c{i}.jpg"))
    spec = ImageFolderDataModule(path=str(root)).spec
    assert spec.input_shape == (1, 20, 20) and spec.task.value == "binary"
    assert ImageFolderDataModule(path=str(root), channels=3, image_size=12).spec.input_shape == (3, 12, 12)


def test_training_decodes_the_pixels_prediction_decodes(tmp_path):
    """One decoder: data=image_folder's pixels (held in memory and streamed) are exactly what
    predict.py and serve.py make of the same files (runtime.images), through a resize and RGB -> gray."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate([(20, 24), (31, 17)]):
            rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
            rgb.save(root / name / f"{i}.png")
            rgb.save(root / name / f"{i}.jpg", quality=75)
    served = {}
    for f in sorted(root.rglob("*.*")):
        served[f] = images.conform(images.decode(f, str(f)), 1, (16, 16))
    held = ImageFolderDataModule(path=str(root), channels=1, image_size=16)
    assert held.arrays.x.shape == (8, 1, 16, 16)
    for f, x in zip(held.source_files(), held.arrays.x, strict=True):
        np.testing.assert_array_equal(x, served[f])
    streamed = ImageFolderDataModule(path=str(root), channels=1, image_size=16, in_memory=False, num_workers=0)
    streamed.setup()
    files = streamed._batches("train", False).loader.dataset  # what the DataLoader workers decode
    assert len(files) > 0
    for i, f in enumerate(files.files):
        np.testing.assert_array_equal(files[i][0].numpy(), served[Path(f)])


def test_pixels_decoded_by_another_decoder_are_not_read_from_the_cache(tmp_path, monkeypatch, caplog):
    root = write_image_folder(tmp_path / "pictures", per_class=3)
    _ = ImageFolderDataModule(path=str(root), cache_dir=str(tmp_path / "cache")).arrays
    monkeypatch.setattr(image_folder, "DECODER", "torchvision 0.0")  # as a cache an older litlab wrote
    with caplog.at_level("INFO"):
        _ = ImageFolderDataModule(path=str(root), cache_dir=str(tmp_path / "cache")).arrays
    assert "read from the cache" not in caplog.text and len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_bad_folders_and_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        ImageFolderDataModule(path=str(tmp_path / "nowhere")).load()
    root = write_image_folder(tmp_path / "few", per_class=3)
    (root / "ten").mkdir()
    with pytest.raises(UserError, match=r"class folder\(s\) \['ten'\] hold no image files"):
        ImageFolderDataModule(path=str(root)).load()
    (root / "ten").rmdir()
    (root / "one" / "broken.png").write_bytes(b"not a png")
    (root / "two" / "empty.jpg").write_bytes(b"")
    listed = r"2 file\(s\) are not readable images \(.*broken.png; .*empty.jpg\).*bad_files=skip"
    with pytest.raises(UserError, match=listed):
        ImageFolderDataModule(path=str(root)).load()
    skipped = ImageFolderDataModule(path=str(root), bad_files="skip")
    assert len(skipped.arrays.y) == 30  # the two bad files are left out, the 30 good ones kept
    assert not any(f.name in ("broken.png", "empty.jpg") for f in skipped.source_files())
    with pytest.raises(UserError, match="data.channels=2 is invalid"):
        ImageFolderDataModule(path=str(root), channels=2)


def test_a_cnn_trains_on_the_folder_and_predicts_class_names_for_new_images(folder, tmp_path):
    run = tmp_path / "run"
    overrides = ["model=cnn", "data=image_folder", f"data.path={folder}", f"data.cache_dir={tmp_path / 'cache'}"]
    # With the default logger, as the README's command runs: the data's hparams (channels) are not
    # merged with the CNN's (channels), which Lightning refuses when the values differ.
    metrics = train(compose_cfg(run, *overrides, "trainer.max_epochs=3", "logger=tensorboard"))
    assert metrics["test"]["test/acc"] >= 0.9

    cfg = compose_cfg(tmp_path / "eval", f"ckpt_path={run}", config_name="eval", shrink=False)
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.enable_progress_bar = "cpu", False
    assert evaluate(cfg)["test"]["test/acc"] == pytest.approx(metrics["test"]["test/acc"])

    new = tmp_path / "new"
    new.mkdir()
    picked = sorted((folder / "seven").glob("*.png"))[:5]
    for f in picked:
        (new / f.name).write_bytes(f.read_bytes())
    frame = predict(str(run), str(new), str(tmp_path / "predictions.csv"))
    assert frame["file"].tolist() == [f.name for f in picked]
    assert set(frame.columns) >= {"pred_label", *(f"prob_{n}" for n in NAMES)}
    assert (frame["pred_label"] == "seven").mean() >= 0.8
    assert pd.read_csv(tmp_path / "predictions.csv")["pred_label"].tolist() == frame["pred_label"].tolist()


def test_the_decoded_images_are_cached_and_a_changed_file_is_decoded_again(tmp_path, caplog):
    root = write_image_folder(tmp_path / "pictures", per_class=20)
    cache = tmp_path / "cache"
    first = ImageFolderDataModule(path=str(root), cache_dir=str(cache))
    x = first.arrays.x
    assert len(list(cache.glob("*.npz"))) == 1 and not list(cache.glob("*.part"))  # written whole
    with caplog.at_level("INFO"):
        again = ImageFolderDataModule(path=str(root), cache_dir=str(cache))
        np.testing.assert_array_equal(again.arrays.x, x)
    assert "read from the cache" in caplog.text
    assert again.fingerprint == first.fingerprint  # the cache changes nothing the checkpoint records
    changed = sorted((root / "seven").glob("*.png"))[0]
    write_png(torch.zeros(1, 8, 8, dtype=torch.uint8), str(changed))
    caplog.clear()
    with caplog.at_level("INFO"):
        fresh = ImageFolderDataModule(path=str(root), cache_dir=str(cache))
        assert not np.array_equal(fresh.arrays.x, x)
    assert "read from the cache" not in caplog.text and len(list(cache.glob("*.npz"))) == 2
    assert ImageFolderDataModule(path=str(root), cache_dir=str(cache), image_size=6).spec.input_shape == (1, 6, 6)


@pytest.mark.slow
@needs_real_mnist
def test_mnist_written_as_png_files_trains_as_data_mnist_does(tmp_path):
    """MNIST's 60,000 train and 10,000 test images as PNG files in train/ and test/ class folders:
    experiment=mnist_fast on them reaches data=mnist's test accuracy, same model and seed, within 0.3 points."""
    mnist = MNISTDataModule(data_dir=str(REAL_DATA_DIR), download=False).arrays
    root = tmp_path / "mnist_png"
    for i, (image, label) in enumerate(zip(mnist.x, mnist.y, strict=True)):
        folder = root / ("test" if i >= len(mnist.y) - mnist.num_test else "train") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        write_png(torch.as_tensor(image), str(folder / f"{i:05d}.png"))
    common = ["experiment=mnist_fast", "seed=0", "extras.print_config=false", "logger=none"]
    as_mnist = compose_cfg(tmp_path / "mnist", *common, f"paths.data_dir={REAL_DATA_DIR}", shrink=False)
    as_files = compose_cfg(tmp_path / "files", *common, "data=image_folder", f"data.path={root}",
                           f"data.cache_dir={tmp_path / 'cache'}", "data.batch_size=128", shrink=False)  # fmt: skip
    for cfg in (as_mnist, as_files):
        cfg.trainer.enable_progress_bar = False
    files = train(as_files)
    assert files["test"]["test/acc"] >= 0.985
    assert abs(files["test"]["test/acc"] - train(as_mnist)["test"]["test/acc"]) <= 0.003
    assert ImageFolderDataModule(path=str(root), cache_dir=str(tmp_path / "cache")).spec.input_shape == (1, 28, 28)


def test_image_csv_takes_labels_from_a_column_and_rows_from_the_file(tmp_path):
    root = write_image_folder(tmp_path / "pictures", per_class=12)
    files = sorted(root.rglob("*.png"))
    parity = ["even" if NAMES.index(f.parent.name) % 2 == 0 else "odd" for f in files]
    table = pd.DataFrame({"id": range(len(files)), "file": [str(f.relative_to(root)) for f in files], "kind": parity})
    csv = root / "labels.csv"
    table.to_csv(csv, index=False)
    dm = ImageCSVDataModule(str(csv), target="kind", cache_dir=str(tmp_path / "cache"))
    spec = dm.spec
    assert spec.class_names == ("even", "odd") and spec.task.value == "binary" and spec.input_shape == (1, 8, 8)
    for split in ("train", "val", "test"):  # row_indices are the CSV's data rows, labels as the file says
        rows, y = dm.row_indices(split), dm.split_tensors(split).y
        assert [parity[r] for r in rows] == [spec.class_names[int(i)] for i in y]
    metrics = train(compose_cfg(tmp_path / "run", "data=image_csv", f"data.path={csv}", "data.target=kind",
                                f"data.cache_dir={tmp_path / 'cache'}", "trainer.max_epochs=10"))  # fmt: skip
    assert metrics["test"]["test/acc"] >= 0.8
    with pytest.raises(UserError, match=r"data.image_column='picture' is not a column"):
        ImageCSVDataModule(str(csv), target="kind", image_column="picture").load()
    table.assign(kind=table.kind.where(table.index != 3, "  ")).to_csv(csv, index=False)
    with pytest.raises(UserError, match=r"data.target='kind' is empty on 1 line\(s\) of .*labels.csv \(5\)"):
        ImageCSVDataModule(str(csv), target="kind").load()
    table.assign(file=table.file.str.replace(".png", ".jpg")).to_csv(csv, index=False)
    with pytest.raises(
        UserError, match=r"line 2 and 119 more line\(s\): no such image file .*0008.jpg \(column 'file'\)"
    ):
        ImageCSVDataModule(str(csv), target="kind").load()


def test_image_csv_paths_are_relative_to_its_folder_or_absolute(tmp_path):
    """A row's path is read from the CSV's folder, so `../` climbs out of it; an absolute path is the
    file itself, inside the CSV's folder or not. The pixels and rows are those of the files named."""
    root = write_image_folder(tmp_path / "pictures", per_class=8)
    files = sorted(root.rglob("*.png"))
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("here.png", "there.png"):
        (lists / name).write_bytes(files[0].read_bytes())
    elsewhere = [str(f) if i % 2 else f"../pictures/{f.relative_to(root)}" for i, f in enumerate(files[1:])]
    named = ["here.png", str(lists / "there.png"), *elsewhere]
    kinds = [files[0].parent.name, *(f.parent.name for f in files)]
    pd.DataFrame({"file": named, "kind": kinds}).to_csv(lists / "labels.csv", index=False)
    dm = ImageCSVDataModule(str(lists / "labels.csv"), target="kind", cache_dir=None)
    assert len(dm.arrays.y) == len(named) and list(dm.class_names) == NAMES
    for f, x in zip(dm.source_files(), dm.arrays.x, strict=True):
        np.testing.assert_array_equal(x, images.conform(images.decode(f, str(f)), 1, (8, 8)))
    rows = np.sort(np.concatenate([dm.row_indices(s) for s in ("train", "val", "test")]))
    assert rows.tolist() == list(range(len(named)))


def test_image_csv_errors_name_the_line(tmp_path):
    root = write_image_folder(tmp_path / "pictures", per_class=3)
    rows = [f"{f.relative_to(root)},{f.parent.name}" for f in sorted(root.rglob("*.png"))]
    (root / "broken.png").write_bytes(b"not a png")
    csv = root / "labels.csv"
    for extra, match in (
        ("seven/9999.png,seven", r"line 32: no such image file .*seven/9999.png \(column 'file'\)"),
        (f"{rows[4].split(',')[0]},one", r"lines 6 and 32 of column 'file' name the same image file .*"),
        ("broken.png,two", r"broken.png \(line 32\): not a format Pillow knows"),
    ):
        csv.write_text("file,kind\n" + "\n".join([*rows, extra]) + "\n")
        with pytest.raises(UserError, match=match):
            ImageCSVDataModule(str(csv), target="kind", cache_dir=None).load()

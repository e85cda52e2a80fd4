"""The hostile-input table of train.py's pictures: class folders (data=image_folder) and a CSV that
lists image files (data=image_csv), their settings, and the image files themselves: damaged,
empty, links to nothing, decompression bombs. Each is one `Error:` line naming it, exit 2, before
training; nothing is cached for a refused run, and the input files are left as they were."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.data_files import bomb_png
from tests.helpers.doors import Form, Refusal
from tests.test_doors_data import first_of_each_door, run_refused

FOLDER, LISTED = "train.py data=image_folder", "train.py data=image_csv"
F = ("model=cnn", "data=image_folder")
L = ("model=cnn", "data=image_csv", "data.target=label")
BAD = "file(s) are not readable images"
LIMIT = "more than 89,478,485 pixels, Pillow's limit against decompression bombs"

REFUSALS: list[Refusal] = [
    # data=image_folder: the folder and its class folders
    Refusal(FOLDER, "data.path", Form.MISSING, "data.path='{tmp}/nope' is not a folder", (*F, "data.path={tmp}/nope")),
    Refusal(FOLDER, "data.path", Form.EMPTY, "holds 0 class folder(s)", (*F, "data.path={empty_dir}")),
    Refusal(FOLDER, "data.path", Form.WRONG_TYPE, "data.path='{a_file}' is not a folder", (*F, "data.path={a_file}")),
    Refusal(FOLDER, "data.path", Form.TOO_FEW, "holds 1 class folder(s)", (*F, "data.path={one_class}")),
    Refusal(FOLDER, "data.path", Form.LINK, "data.path='{loop_dir}' is not a folder", (*F, "data.path={loop_dir}")),
    Refusal(FOLDER, "class folder", Form.EMPTY, "the class folder(s) ['c'] hold no image files",
            (*F, "data.path={no_images}")),
    Refusal(FOLDER, "class folder", Form.HIDDEN, "the class folder(s) ['b'] hold no image files",
            (*F, "data.path={only_hidden}")),
    Refusal(FOLDER, "test/ folder", Form.MISSING, "has train/ but no test/ folder", (*F, "data.path={no_test}")),
    Refusal(FOLDER, "test/ folder", Form.TOO_FEW, "class 'b' has no row in the test set",
            (*F, "data.path={test_lacks}")),
    # data=image_folder: the image files
    Refusal(FOLDER, "image file", Form.TRUNCATED, f"1 {BAD} ({{tmp}}/truncated/a/0.png)",
            (*F, "data.path={truncated}")),
    Refusal(FOLDER, "image file", Form.CORRUPT, "not a format Pillow knows", (*F, "data.path={not_image}")),
    Refusal(FOLDER, "image file", Form.EMPTY, f"1 {BAD} ({{tmp}}/zero_bytes/b/0.jpg)", (*F, "data.path={zero_bytes}")),
    Refusal(FOLDER, "image file", Form.HUGE, f"{{tmp}}/bomb/a/bomb.png: {LIMIT}", (*F, "data.path={bomb}")),
    Refusal(FOLDER, "image file", Form.HUGE, f"{{tmp}}/big/a/big.png: {LIMIT}", (*F, "data.path={big}")),
    Refusal(FOLDER, "image file", Form.LINK, "No such file or directory", (*F, "data.path={dangling}")),
    Refusal(FOLDER, "image file", Form.LINK, "Too many levels of symbolic links", (*F, "data.path={loop}")),
    Refusal(FOLDER, "image file", Form.LOCKED, "Permission denied", (*F, "data.path={locked}")),
    Refusal(FOLDER, "data.bad_files", Form.CORRUPT, "none of the 8 image file(s) is a readable image",
            (*F, "data.path={all_bad}", "data.bad_files=skip")),
    # data=image_folder: its settings
    Refusal(FOLDER, "data.image_size", Form.OUT_OF_RANGE, "data.image_size=100000 is invalid: give a side in pixels "
            "from 4 to 9459", (*F, "data.path={good}", "data.image_size=100000")),
    Refusal(FOLDER, "data.image_size", Form.WRONG_TYPE, "data.image_size=12.5 is invalid",
            (*F, "data.path={good}", "data.image_size=12.5")),
    Refusal(FOLDER, "data.channels", Form.OUT_OF_RANGE, "data.channels=2 is invalid", (*F, "data.path={good}",
            "data.channels=2")),
    Refusal(FOLDER, "data.channels", Form.WRONG_TYPE, "data.channels=True is invalid", (*F, "data.path={good}",
            "data.channels=true")),
    Refusal(FOLDER, "data.in_memory", Form.WRONG_TYPE, "data.in_memory=1.0 is invalid", (*F, "data.path={good}",
            "data.in_memory=1.0")),
    Refusal(FOLDER, "data.bad_files", Form.OUT_OF_RANGE, "data.bad_files='ignore' is invalid",
            (*F, "data.path={good}", "data.bad_files=ignore")),
    Refusal(FOLDER, "data.num_workers", Form.OUT_OF_RANGE, "data.num_workers=-1 is invalid",
            (*F, "data.path={good}", "data.num_workers=-1")),
    Refusal(FOLDER, "data.memory_budget_gb", Form.NON_FINITE, "data.memory_budget_gb=nan is invalid",
            (*F, "data.path={good}", "data.memory_budget_gb=nan")),
    Refusal(FOLDER, "data.memory_budget_gb", Form.WRONG_TYPE, "data.memory_budget_gb='lots' is invalid",
            (*F, "data.path={good}", "data.memory_budget_gb=lots")),
    Refusal(FOLDER, "data.crop_padding", Form.WRONG_TYPE, "data.crop_padding=1.5 is invalid",
            (*F, "data.path={good}", "data.crop_padding=1.5")),
    Refusal(FOLDER, "data.translate", Form.OUT_OF_RANGE, "data.translate=1 is invalid",
            (*F, "data.path={good}", "data.translate=1")),
    Refusal(FOLDER, "data.rotate", Form.NON_FINITE, "data.rotate=nan is invalid", (*F, "data.path={good}",
            "data.rotate=nan")),
    # data=image_csv: the CSV and its rows
    Refusal(LISTED, "data.path", Form.MISSING, "data.path='{tmp}/nope.csv': no such file",
            (*L, "data.path={tmp}/nope.csv")),
    Refusal(LISTED, "data.path", Form.EMPTY, "has a header but no data rows", (*L, "data.path={listed_header}")),
    Refusal(LISTED, "data.path", Form.WRONG_TYPE, "data.path='{good}': is a folder", (*L, "data.path={good}")),
    Refusal(LISTED, "CSV rows", Form.MISSING, "line 18: no such image file {good}/a/9.png (column 'file')",
            (*L, "data.path={listed_missing}")),
    Refusal(LISTED, "CSV rows", Form.DUPLICATE, "lines 2 and 18 of column 'file' name the same image file",
            (*L, "data.path={listed_twice}")),
    Refusal(LISTED, "CSV rows", Form.EMPTY, "data.target='label' is empty on 1 line(s)",
            (*L, "data.path={listed_blank}")),
    Refusal(LISTED, "CSV rows", Form.TOO_FEW, "the target has 1 class(es) ['x']", (*L, "data.path={listed_one}")),
    Refusal(LISTED, "CSV rows", Form.LINK, "line 18: no such image file", (*L, "data.path={listed_link}")),
    Refusal(LISTED, "image file", Form.HUGE, f"bomb.png (line 18): {LIMIT}", (*L, "data.path={listed_bomb}")),
    Refusal(LISTED, "image file", Form.CORRUPT, "junk.png (line 18): not a format Pillow knows",
            (*L, "data.path={listed_junk}")),
    Refusal(LISTED, "data.image_column", Form.MISSING, "data.image_column='picture' is not a column",
            (*L, "data.path={listed}", "data.image_column=picture")),
    Refusal(LISTED, "data.image_column", Form.WRONG_TYPE, "line 2 and 15 more line(s): no such image file",
            (*L, "data.path={listed}", "data.image_column=label")),
    Refusal(LISTED, "data.target", Form.MISSING, "data.target='kind' is not a column",
            (*L, "data.path={listed}", "data.target=kind")),
]  # fmt: skip


def picture(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), shade, np.uint8)).save(path)


def class_folders(root: Path, classes: str = "ab", per_class: int = 8) -> str:
    """8x8 gray PNGs, root/<class>/<i>.png, a shade per class."""
    for k, name in enumerate(classes):
        for i in range(per_class):
            picture(root / name / f"{i}.png", 40 + 120 * k + i)
    return str(root)


def with_file(root: Path, name: str, content: bytes) -> str:
    """class_folders with one more file, root/name, holding `content`."""
    class_folders(root)
    (root / name).parent.mkdir(exist_ok=True)
    (root / name).write_bytes(content)
    return str(root)


def folders(tmp: Path) -> dict[str, str]:
    (tmp / "empty_dir").mkdir()
    (tmp / "a_file").write_text("a file, not a folder\n")
    (tmp / "loop_dir").symlink_to(tmp / "loop_dir")
    names = {n: str(tmp / n) for n in ("empty_dir", "a_file", "loop_dir")}
    names["good"] = class_folders(tmp / "good")
    names["one_class"] = class_folders(tmp / "one_class", classes="a")
    names["no_images"] = with_file(tmp / "no_images", "c/notes.txt", b"no pictures here\n")
    names["only_hidden"] = class_folders(tmp / "only_hidden", classes="a")
    (tmp / "only_hidden" / "b").mkdir()
    (tmp / "only_hidden" / "b" / "._0.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    class_folders(tmp / "no_test" / "train")
    names["no_test"] = str(tmp / "no_test")
    class_folders(tmp / "test_lacks" / "train")
    class_folders(tmp / "test_lacks" / "test", classes="a", per_class=3)
    names["test_lacks"] = str(tmp / "test_lacks")
    return names


def image_files(tmp: Path) -> dict[str, str]:
    whole = (Path(class_folders(tmp / "source")) / "a" / "0.png").read_bytes()
    names = {
        "truncated": with_file(tmp / "truncated", "a/0.png", whole[: len(whole) // 2]),
        "not_image": with_file(tmp / "not_image", "a/notes.png", b"a text file named .png\n"),
        "zero_bytes": with_file(tmp / "zero_bytes", "b/0.jpg", b""),
        "bomb": with_file(tmp / "bomb", "a/bomb.png", bomb_png(20_000, 20_000)),  # past Pillow's error
        "big": with_file(tmp / "big", "a/big.png", bomb_png(10_000, 9_000)),  # past Pillow's warning
        "locked": with_file(tmp / "locked", "a/locked.png", whole),
        "dangling": class_folders(tmp / "dangling"),
        "loop": class_folders(tmp / "loop"),
        "all_bad": class_folders(tmp / "all_bad", per_class=4),
    }
    (tmp / "locked" / "a" / "locked.png").chmod(0)
    (tmp / "dangling" / "a" / "gone.png").symlink_to(tmp / "nowhere.png")
    (tmp / "loop" / "a" / "x.png").symlink_to(tmp / "loop" / "a" / "y.png")
    (tmp / "loop" / "a" / "y.png").symlink_to(tmp / "loop" / "a" / "x.png")
    for f in (tmp / "all_bad").rglob("*.png"):
        f.write_bytes(b"not a picture")
    return names


def listings(tmp: Path, good: str) -> dict[str, str]:
    """CSVs beside the `good` class folders: file (a/0.png...) and label columns, 16 rows (lines 2-17),
    and a broken 17th row (line 18) where a row is broken."""
    rows = [(f"{c}/{i}.png", c) for c in "ab" for i in range(8)]
    Path(good, "bomb.png").write_bytes(bomb_png(20_000, 20_000))
    Path(good, "junk.png").write_bytes(b"not a picture")
    Path(good, "gone.png").symlink_to(tmp / "nowhere.png")
    texts = {
        "listed": rows,
        "listed_missing": [*rows, ("a/9.png", "a")],
        "listed_twice": [*rows, ("a/0.png", "b")],
        "listed_blank": [*rows, ("b/7.png", " ")],
        "listed_one": [(f, "x") for f, _ in rows],
        "listed_link": [*rows, ("gone.png", "a")],
        "listed_bomb": [*rows, ("bomb.png", "a")],
        "listed_junk": [*rows, ("junk.png", "b")],
    }
    names = {}
    for name, listed in texts.items():
        Path(good, f"{name}.csv").write_text("file,label\n" + "".join(f"{f},{label}\n" for f, label in listed))
        names[name] = str(Path(good, f"{name}.csv"))
    Path(good, "listed_header.csv").write_text("file,label\n")
    return names | {"listed_header": str(Path(good, "listed_header.csv"))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("doors_pictures")
    names = {"tmp": str(tmp), **folders(tmp), **image_files(tmp)}
    return names | listings(tmp, names["good"]), tmp


@pytest.mark.parametrize("row", first_of_each_door(REFUSALS))
def test_a_hostile_picture_input_is_refused_in_one_line(inputs, cli, tmp_path, row):
    names, tmp = inputs
    run_refused(cli, row, names, tmp, tmp_path)

"""Images that do not decode, decompression bombs among them, are bad files like any other, in the one
decoder training, predict.py and serve.py share (litlab.readers.images): one line naming the file
and why, or, with data.bad_files=skip, left out and counted as what was really left out."""

import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from litlab.data import ImageFolderDataModule
from litlab.errors import UserError
from litlab.readers import images
from tests.helpers.config import ROOT
from tests.helpers.data_files import bomb_png

pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # as in litlab's runs
LIMIT = "more than 89,478,485 pixels, Pillow's limit against decompression bombs"
BOMB, BIG = (20_000, 20_000), (10_000, 9_000)  # past Pillow's error (2x its limit), past its warning (1x)


def pictures(root, per_class: int = 6):
    for k, name in enumerate(("dark", "light")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8), 40 + 150 * k + i, np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("size", [BOMB, BIG], ids=["bomb", "past-the-warning"])
@pytest.mark.parametrize("bomb_warning", ["error", "ignore"])  # as litlab sets it, and as reset by another
def test_the_decoder_refuses_an_image_past_pillows_limit_in_one_line(size, bomb_warning):
    with warnings.catch_warnings():
        warnings.simplefilter(bomb_warning, Image.DecompressionBombWarning)
        with pytest.raises(UserError, match=rf"^images\[0\] is not a readable image \({LIMIT}\)"):
            images.decode(bomb_png(*size), "images[0]")


def test_a_bomb_is_refused_without_a_warning_line_where_no_test_runner_resets_the_filters(tmp_path):
    """As predict.py and serve.py run it: Pillow's DecompressionBombWarning would be a second line."""
    (tmp_path / "big.png").write_bytes(bomb_png(*BIG))
    code = (
        "import sys; from litlab.errors import UserError; from litlab.readers import images\n"
        "try: images.decode(open(sys.argv[1], 'rb').read(), 'big.png')\n"
        "except UserError as e: print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.png")], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.stderr == "" and LIMIT in proc.stdout, (proc.stdout, proc.stderr)


def test_a_bomb_in_a_class_folder_is_named_before_training(tmp_path):
    root = pictures(tmp_path / "pictures")
    (root / "dark" / "bomb.png").write_bytes(bomb_png(*BOMB))
    with pytest.raises(UserError, match=rf"1 file\(s\) are not readable images .*bomb.png: {LIMIT}"):
        ImageFolderDataModule(path=str(root), cache_dir=None).load()


def test_skipped_files_are_counted_as_left_out_also_when_read_from_the_cache(tmp_path, caplog):
    """A bomb, a file past the warning, a damaged file and a link to nothing are left out under
    data.bad_files=skip; the warning counts them on the run that decodes and on the next, which reads
    the decoded images from the cache."""
    root = pictures(tmp_path / "pictures")
    (root / "dark" / "bomb.png").write_bytes(bomb_png(*BOMB))
    (root / "light" / "big.png").write_bytes(bomb_png(*BIG))
    (root / "light" / "broken.jpg").write_bytes(b"\xff\xd8 not a whole jpeg")
    (root / "dark" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    for run in ("decoded", "cached"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            dm = ImageFolderDataModule(path=str(root), bad_files="skip", cache_dir=str(tmp_path / "cache"))
            assert len(dm.arrays.y) == 12 and len(dm.source_files()) == 12, run
        left = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
        assert len(left) == 1 and left[0].startswith("left out 4 file(s) that are not readable images"), (run, left)
        assert all(name in left[0] for name in ("bomb.png", "gone.png", "big.png", "and 1 more")), left
        assert ("read from the cache" in caplog.text) == (run == "cached")


def test_every_file_left_out_is_one_line_not_a_crash(tmp_path):
    root = pictures(tmp_path / "pictures", per_class=2)
    for f in root.rglob("*.png"):
        f.write_bytes(bomb_png(*BOMB))
    with pytest.raises(UserError, match=r"none of the 4 image file\(s\) is a readable image"):
        ImageFolderDataModule(path=str(root), bad_files="skip", cache_dir=None).load()


def test_hidden_files_and_folders_are_no_images_or_classes(tmp_path):
    """macOS's ._name.png beside each picture, and a notebook's .ipynb_checkpoints folder."""
    root = pictures(tmp_path / "pictures")
    (root / ".ipynb_checkpoints").mkdir()
    (root / "dark" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    dm = ImageFolderDataModule(path=str(root), cache_dir=None)
    assert dm.class_names == ["dark", "light"] and len(dm.arrays.y) == 12

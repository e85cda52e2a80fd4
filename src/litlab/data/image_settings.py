"""data=image_folder's own settings (data=image_csv takes them too): what each takes, its check, and
the defaults this machine gives those left null."""

import math

from PIL import Image

from litlab.data.base import DataArgs
from litlab.errors import UserError
from litlab.values import is_int, is_number

BAD_FILES = ("error", "skip")  # what a file that does not decode does: stop the run, or is left out
IN_MEMORY = ("auto", True, False)
MAX_WORKERS = 8  # data.num_workers=null: one per CPU core, at most this many
MIN_SIZE = 4  # data.image_size: the smallest side
MAX_SIZE = math.isqrt(Image.MAX_IMAGE_PIXELS or 89_478_485)  # a square of at most Pillow's limit of pixels


class ImageFolderArgs(DataArgs, total=False):
    """What data=image_csv takes of ImageFolderDataModule's settings, besides the path."""

    channels: int | None
    image_size: int | None
    crop_padding: int
    hflip: bool
    translate: float
    rotate: float
    bad_files: str
    cache_dir: str | None
    in_memory: str | bool
    memory_budget_gb: float | None
    num_workers: int | None


def check_settings(
    channels: int | None,
    image_size: int | None,
    bad_files: str,
    in_memory: str | bool,
    memory_budget_gb: float | None,
    num_workers: int | None,
) -> None:
    """One UserError for the first of data=image_folder's own settings that is invalid."""
    if bad_files not in BAD_FILES:
        raise UserError(f"data.bad_files={bad_files!r} is invalid; valid: {', '.join(BAD_FILES)}")
    if channels is not None and (not is_int(channels) or channels not in (1, 3)):
        raise UserError(f"data.channels={channels!r} is invalid: use 1 (gray), 3 (RGB) or null (as most files)")
    if image_size is not None and not (is_int(image_size) and MIN_SIZE <= image_size <= MAX_SIZE):
        raise UserError(f"data.image_size={image_size!r} is invalid: give a side in pixels from {MIN_SIZE} to "
                        f"{MAX_SIZE} (Pillow's limit of pixels per image), e.g. 32, or null")  # fmt: skip
    if type(in_memory) not in (str, bool) or in_memory not in IN_MEMORY:
        raise UserError(f"data.in_memory={in_memory!r} is invalid; valid: auto, true (held in memory), "
                        "false (streamed from the files)")  # fmt: skip
    if memory_budget_gb is not None and not (is_number(memory_budget_gb) and memory_budget_gb > 0):
        raise UserError(f"data.memory_budget_gb={memory_budget_gb!r} is invalid: give a size in GB > 0, or null")
    if num_workers is not None and not (is_int(num_workers) and num_workers >= 0):
        raise UserError(f"data.num_workers={num_workers!r} is invalid: give 0 (decode in the main process) "
                        "or more worker processes, or null (one per core)")  # fmt: skip

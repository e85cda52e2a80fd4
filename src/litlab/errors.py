"""User errors: a bad config value, a missing or bad file, an unusable checkpoint, an impossible
device. The entry points print them as one line and exit 2; anything else keeps its traceback."""

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")

USER_ERROR_EXIT = 2  # as argparse exits on a bad command line


class UserError(ValueError):
    """Something the user gave is unusable. The message names the value, says what is valid and
    how to fix it. A ValueError: almost all of them are a bad value of a config key."""


def wants_traceback(show: bool) -> bool:
    """`extras.traceback=true` or HYDRA_FULL_ERROR=1: user errors show their full traceback too."""
    return show or os.environ.get("HYDRA_FULL_ERROR") == "1"


def exit_with(error: UserError) -> NoReturn:
    """One line on stderr, exit code 2: no traceback, which would only point into litlab. The same
    line goes into the log file Hydra opened for the job (train.log), which would otherwise be left
    empty by a refused run, saying nothing of why it ended."""
    line = f"Error: {error}"
    print(line, file=sys.stderr)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            with contextlib.suppress(OSError), open(handler.baseFilename, "a", encoding="utf-8") as log:
                log.write(line + "\n")  # not through the handler: a failed write must not print its own traceback
    raise SystemExit(USER_ERROR_EXIT)


def exit_on_user_error(job: Callable[[], T], show_traceback: bool = False) -> T:
    """`job()`; a UserError it raises exits as `exit_with` does, unless a traceback is wanted."""
    try:
        return job()
    except UserError as e:
        if wants_traceback(show_traceback):
            raise
        exit_with(e)

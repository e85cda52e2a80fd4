"""Files crafted to run code when unpickled: what a checkpoint or data file from a stranger could
do, for the tests that litlab never runs it."""

import os

import torch


class MakesADir:
    """Unpickling this runs os.mkdir(path): a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def crafted_checkpoint(path, marker) -> str:
    """A checkpoint at `path` whose loading with pickle creates the dir `marker`; returns the path."""
    torch.save({"state_dict": {}, "payload": MakesADir(str(marker))}, path)
    return str(path)

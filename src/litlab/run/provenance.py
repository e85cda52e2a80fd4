"""Where a run's numbers came from, recorded in its metrics.json as `provenance`: the code (git
commit, and whether the tree had changes), the versions of Python and the libraries that decide
the numbers, the data's fingerprint, the seed, the host and the device. litlab reproduce runs
the recorded command again and compares."""

import hashlib
import json
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import lightning as L
import torch

CHECKOUT = Path(__file__).resolve().parents[3]  # src/litlab/run/provenance.py -> the repository
PACKAGES = ("litlab", "torch", "lightning", "hydra-core", "torchmetrics", "numpy", "scikit-learn", "pandas")
GIT_TIMEOUT_S = 10


def git_state(checkout: Path = CHECKOUT) -> dict | None:
    """The commit litlab runs from and whether tracked files differ from it; None outside a git
    checkout (an installed package) or where git is missing."""
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=GIT_TIMEOUT_S)  # fmt: skip
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=GIT_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def data_digest(fingerprint: dict) -> dict:
    """The data's fingerprint (data.fingerprint) in a few fields: one sha256 over all of it, which
    changes with any file's content, size or path; the files themselves stay in the checkpoint."""
    text = json.dumps(fingerprint, sort_keys=True)
    return {"key": fingerprint.get("key"), "files": len(fingerprint.get("files", [])),
            "sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip


def device_of(trainer: L.Trainer) -> str:
    device = trainer.strategy.root_device
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def provenance(trainer: L.Trainer, fingerprint: dict, seed: int) -> dict:
    return {
        "git": git_state(),
        "versions": versions(),
        "data": data_digest(fingerprint),
        "seed": seed,
        "host": socket.gethostname(),
        "device": device_of(trainer),
        "world_size": trainer.world_size,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }

"""Reference for time-to-accuracy: a plain PyTorch loop that trains a lean CNN to >= 99% MNIST test accuracy.

    python scripts/benchmarks/plain_mnist.py [RAW_DIR]     # prints test acc per epoch

No Lightning, no DataLoader: the whole dataset is one in-memory tensor, batches are cut by indexing a
permutation. Conv 24/48 5x5 with BN, AdamW + one-cycle, batch 128, random shifts of up to 2 px,
2 epochs. Time it from the command to the last printed line (e.g. /usr/bin/time), interleaved with
the command it is compared to. Reads the MNIST .gz files in RAW_DIR (default: data/MNIST/raw in the
current directory, where conf/data/mnist.yaml's data_dir puts them).
"""

import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

t0 = time.perf_counter()
RAW = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data") / "MNIST" / "raw"


def idx(name: str, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.open(RAW / name).read(), np.uint8, offset=offset)


def images(name: str) -> torch.Tensor:
    x = torch.from_numpy(idx(name, 16).reshape(-1, 1, 28, 28).copy()).float()
    return x.div_(255).sub_(0.1307).div_(0.3081)


def labels(name: str) -> torch.Tensor:
    return torch.from_numpy(idx(name, 8).astype(np.int64))


xtr, ytr = images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")
xte, yte = images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")
torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(1, 24, 5, padding=2), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(24, 48, 5, padding=2), nn.BatchNorm2d(48), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(48 * 49, 10),
)  # fmt: skip
EPOCHS, B = 2, 128
steps = EPOCHS * (len(xtr) // B)
opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps, pct_start=0.25)
t1 = time.perf_counter()
for epoch in range(EPOCHS):
    perm = torch.randperm(len(xtr))
    net.train()
    for i in range(len(xtr) // B):
        batch = perm[i * B : (i + 1) * B]
        shift = torch.randint(-2, 3, (2,)).tolist()  # the same random translation for the whole batch
        xb = torch.roll(xtr[batch], shifts=shift, dims=(2, 3))
        loss = F.cross_entropy(net(xb), ytr[batch], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    now = time.perf_counter()
    print(f"epoch {epoch + 1} test acc {acc:.4f} fit {now - t1:.1f}s total {now - t0:.1f}s", flush=True)

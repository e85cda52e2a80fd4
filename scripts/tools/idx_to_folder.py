"""Write the first N pictures of an MNIST-format set (the idx files of MNIST or Fashion-MNIST, plain or
.gz) as 28x28 gray PNG files in one folder per class: a small image folder for `data=image_folder`.

    python scripts/tools/idx_to_folder.py /usr/share/datasets/fashion-mnist OUT --images 500 [--names]

`--names`: class folders named by the set's class names (Fashion-MNIST's: T-shirt_top, Trouser, ...)
instead of the ids 0..9. Refuses to write into a folder that is not empty.
"""

import argparse
from pathlib import Path

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def found(p: argparse.ArgumentParser, folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    p.exit(2, f"Error: {folder}: no {name} or {name}.gz there; give the folder holding the set's idx files\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="the folder of the idx files, e.g. /usr/share/datasets/fashion-mnist")
    p.add_argument("out", type=Path, help="the image folder to write (new or empty)")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--names", action="store_true", help="folders named by Fashion-MNIST's class names")
    args = p.parse_args()
    import numpy as np  # after --help has answered
    from PIL import Image

    from litlab.data.torchvision_sets import FashionMNISTDataModule, read_idx

    if args.out.exists() and any(args.out.iterdir()):
        p.exit(2, f"Error: {args.out} is not empty: give a new or empty folder\n")
    x, y = read_idx(found(p, args.source, IMAGES)), read_idx(found(p, args.source, LABELS))
    names = [n.replace("/", "_") for n in FashionMNISTDataModule.labels] if args.names else None
    for i in range(min(args.images, len(y))):
        folder = args.out / (names[y[i]] if names else str(y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(x[i], dtype=np.uint8)).save(folder / f"{i:05d}.png")
    n = min(args.images, len(y))
    print(f"wrote {n} pictures in {len(set(y[:n].tolist()))} class folders to {args.out}")


if __name__ == "__main__":
    main()

"""A report (litlab.evaluation.report) on disk: report.md, its PNGs and CSV tables in the
report folder, and the same figures, tables and scalars in a TensorBoard event file. Every file is
written whole (litlab.files), the event file included."""

import shutil
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

from litlab import files
from litlab.evaluation.report import Report, markdown_table

DPI = 110  # the PNGs: sharp in a markdown viewer, ~30-80 KB each


def save_png(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=DPI)  # format: the temporary name has no .png


def save_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False)


def write_report(report: Report, folder: Path) -> Path:
    """report.md, `<figure>.png` and the CSV tables in `folder`; the path of report.md."""
    for name, figure in report.figures.items():
        files.write_with(folder / f"{name}.png", partial(save_png, figure))
    for name, table in report.tables.items():
        files.write_with(folder / name, partial(save_csv, table))
    page = folder / "report.md"
    files.write_text(page, "\n".join(report.lines) + "\n")
    return page


def write_events(report: Report, run_dir: Path, prefix: str) -> Path:
    """The report's figures (as images), tables (as markdown text) and scalars, tagged
    `<prefix>/<name>`, in one TensorBoard event file in `run_dir`; its path. SummaryWriter appends
    to its file as it goes, so it writes into a temporary folder and the finished file is copied
    into place whole."""
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".tensorboard.") as scratch:
        writer = SummaryWriter(log_dir=scratch)
        for name, value in report.scalars.items():
            writer.add_scalar(f"{prefix}/{name}", value, global_step=0)
        for name, table in report.tables.items():
            text = "\n".join(markdown_table(table.head(50)))
            writer.add_text(f"{prefix}/{Path(name).stem}", text, global_step=0)
        for name, figure in report.figures.items():
            writer.add_figure(f"{prefix}/{name}", figure, global_step=0, close=False)
        writer.close()
        (written,) = Path(scratch).glob("events.out.tfevents.*")
        target = run_dir / written.name
        files.write_with(target, lambda path: shutil.copyfile(written, path))
    return target

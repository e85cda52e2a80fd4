"""Pictures listed in a CSV file, with labels that are not folder names: data=image_csv."""

from pathlib import Path

import numpy as np
import pandas as pd
from typing_extensions import Unpack, override

from litlab.data.class_folders import IMAGE_SUFFIXES
from litlab.data.csv import empty_cells, read_table
from litlab.data.image_folder import ImageFolderDataModule
from litlab.data.image_settings import ImageFolderArgs
from litlab.errors import UserError


class ImageCSVDataModule(ImageFolderDataModule):
    """Pictures listed in a CSV file: a column of image paths (relative to the CSV's folder, or
    absolute) and a label column, `target`, for labels that are not folder names. `image_column`: the paths' column
    (default: the one whose values end in an image suffix). Decoding, sizes, augmentation and the
    cache as for data=image_folder; `row` in test_predictions.csv is the CSV's data row."""

    def __init__(
        self,
        path: str,
        target: str,
        image_column: str | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        **image: Unpack[ImageFolderArgs],
    ) -> None:
        path = str(path)  # a number from the command line is a file name too
        if not Path(path).is_file():
            what = "is a folder (data=image_folder reads class folders)" if Path(path).is_dir() else "no such file"
            raise UserError(f"data.path={path!r}: {what}. Give a CSV file with a column of image paths")
        super().__init__(path, **image)
        self.target, self.image_column, self.encoding, self.delimiter = target, image_column, encoding, delimiter
        self._csv_rows: dict[Path, int] = {}

    @property
    @override
    def root(self) -> Path:
        return self.path.parent

    @property
    @override
    def layout(self) -> dict[str, dict[str, list[Path]]]:
        if self._layout is None:
            table = read_table(str(self.path), self.encoding, delimiter=self.delimiter)
            if table.empty:
                raise UserError(f"data.path={str(self.path)!r} has a header but no data rows; give one row per image")
            column = self._paths_column(table)
            for key, name in (("data.target", self.target), ("data.image_column", column)):
                empty, shown = empty_cells(table[name])
                if empty.any():  # an empty label would be a class of its own
                    raise UserError(
                        f"{key}={name!r} is empty on {empty.sum()} line(s) of {self.path} ({shown}); fill them or "
                        "remove those rows"
                    )
            files = [self.root / str(p) for p in table[column]]  # an absolute path stays as it is
            self._check_files(files, column)
            labels = table[self.target].astype(str).str.strip()
            self._csv_rows = {f: i for i, f in enumerate(files)}
            self._layout = {"all": {name: [f for f, label in zip(files, labels, strict=True) if label == name]
                                    for name in sorted(set(labels))}}  # fmt: skip
        return self._layout

    def _check_files(self, files: list[Path], column: str) -> None:
        """Every row names an image file that exists, each file on one row only: else one error naming
        the lines (line 1 is the header)."""
        missing = [i + 2 for i, f in enumerate(files) if not f.is_file()]
        if missing:
            more = f" and {len(missing) - 1} more line(s)" if len(missing) > 1 else ""
            raise UserError(
                f"data.path={str(self.path)!r}: line {missing[0]}{more}: no such image file {files[missing[0] - 2]} "
                f"(column {column!r}); relative paths are read from the CSV's folder {self.root}"
            )
        first_line: dict[Path, int] = {}
        for i, f in enumerate(files):
            line = first_line.setdefault(f.resolve(), i + 2)
            if line != i + 2:
                raise UserError(
                    f"data.path={str(self.path)!r}: lines {line} and {i + 2} of column {column!r} name the same "
                    f"image file ({f}); list each image once"
                )

    @override
    def describe(self, path: Path) -> str:
        return f"{path} (line {self._csv_rows[path] + 2})"

    @override
    def source_rows(self, files: list[Path]) -> np.ndarray | None:
        return np.array([self._csv_rows[f] for f in files], dtype=np.int64)

    def _paths_column(self, table: pd.DataFrame) -> str:
        """`image_column`, or the column whose values all end in an image suffix; the target checked too."""
        columns = list(table.columns)
        if self.target not in columns:
            raise UserError(f"data.target={self.target!r} is not a column of {self.path}; columns: {columns}")
        if self.image_column is not None:
            if self.image_column not in columns:
                raise UserError(f"data.image_column={self.image_column!r} is not a column of {self.path}: {columns}")
            return self.image_column
        found = [c for c in columns if table[c].astype(str).str.lower().str.endswith(IMAGE_SUFFIXES).all()]
        if not found:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            raise UserError(f"{self.path}: no column holds image paths ({suffixes}); name it with data.image_column")
        return found[0]

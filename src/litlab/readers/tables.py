"""Tables, with numpy and pandas only: the one reader of CSV files (training's data=csv and
image_csv, and prediction's inputs), and for prediction JSON rows, checked against the
training's columns and one-hot encoded as in training."""

import csv
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from litlab.data_spec import Columns
from litlab.errors import UserError
from litlab.readers import csv_parts

log = logging.getLogger(__name__)

DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 20


def sniff_delimiter(path: str, encoding: str) -> str:
    """The column separator of the CSV file at `path` (`,`, `;`, tab or `|`), by csv.Sniffer on its
    first lines; `,` where the sample does not tell."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            sample = "".join(f.readline() for _ in range(SNIFF_LINES))
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except (csv.Error, UnicodeDecodeError, LookupError, OSError):
        return ","  # pd.read_csv then names what is wrong with the file


def read_table(
    path: str, encoding: str = "utf-8", key: str = "data.path", delimiter: str | None = None
) -> pd.DataFrame:
    """The CSV file's rows, with surrounding whitespace stripped from every string value
    ('N ' and 'N' are one label). `delimiter`: None detects it (logged when it is not `,`); with
    `;`, the spreadsheets' separator where the comma is the decimal mark, `3,5` reads as 3.5.
    predict.py reads new rows with it too (`key`: the setting that named the file, for errors)."""
    if delimiter is None:
        delimiter = sniff_delimiter(path, encoding)
        if delimiter != ",":
            log.info("%s: columns separated by %r (detected; data.delimiter sets it)", path, delimiter)
    try:
        df = csv_parts.read_csv(path, encoding=encoding, sep=delimiter, decimal="," if delimiter == ";" else ".")
    except UnicodeDecodeError as e:
        fix = "give its encoding, e.g. data.encoding=latin-1" if key == "data.path" else "save it as UTF-8"
        raise UserError(f"{key}={path!r} is not valid {encoding} ({e.reason} at byte {e.start}); {fix}") from None
    except LookupError:
        raise UserError(f"data.encoding={encoding!r} is not an encoding Python knows; e.g. utf-8, latin-1") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
        raise UserError(f"{key}={path!r} could not be read as CSV: {e}") from None
    repeated = repeated_columns(path, encoding, delimiter)
    if repeated:  # pandas would rename the second 'y' 'y.1', a feature that may be the target itself
        raise UserError(f"{key}={path!r} names the column(s) {repeated} more than once in its header; rename or "
                        "remove the duplicates")  # fmt: skip
    for column in df.columns:
        if df[column].dtype == object:
            df[column] = df[column].str.strip()
    return df


def repeated_columns(path: str, encoding: str, delimiter: str) -> list[str]:
    """The names that the header of the CSV file at `path` (read whole by pandas already) holds twice or more."""
    header = pd.read_csv(path, encoding=encoding, sep=delimiter, header=None, nrows=1, dtype=str, keep_default_na=False)
    names = header.iloc[0].tolist() if len(header) else []
    return sorted({name for name in names if names.count(name) > 1})


def rows_frame(rows: Sequence[Mapping[str, Any]], where: str = "rows") -> pd.DataFrame:
    """JSON rows (one {column: value} object per row) as a table, strings stripped as a CSV's are."""
    if not rows or not all(isinstance(row, Mapping) for row in rows):
        raise UserError(f"{where}: give a non-empty list of objects, one {{column: value}} per row")
    df = pd.DataFrame([dict(row) for row in rows])
    for column in df.columns:
        if df[column].dtype == object:
            df[column] = df[column].map(lambda v: v.strip() if isinstance(v, str) else v)
    return df


def features(df: pd.DataFrame, columns: Columns, where: str) -> np.ndarray:
    """(N, F) float32: the training's input columns of `df` (others ignored, any order), numeric ones
    as they are, categorical ones one-hot encoded with training's categories; a category training never
    saw leaves all its features 0. `where` names the input in errors ("input='new.csv'")."""
    expected, categorical = list(columns.inputs), set(columns.categorical)
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise UserError(f"{where} lacks the column(s) {missing}; the model was trained on {expected}")
    df = df[expected]
    if df.isna().any().any():
        raise UserError(f"{where} has missing values in {list(df.columns[df.isna().any()])}")
    numeric = [c for c in expected if c not in categorical]
    not_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(df[c])]
    if not_numeric:
        raise UserError(f"{where}: column(s) {not_numeric} must be numeric, as in training")
    out = np.zeros((len(df), len(columns.features)), dtype=np.float32)
    place = {name: i for i, name in enumerate(columns.features)}
    for column in numeric:
        out[:, place[column]] = df[column].to_numpy(dtype=np.float32)
    unseen: set[str] = set()
    for column in columns.categorical:
        found = [columns.one_hot[column].get(str(value)) for value in df[column]]
        unseen |= {f"{column}_{value}" for value, feature in zip(df[column], found, strict=True) if feature is None}
        for row, feature in enumerate(found):
            if feature is not None:
                out[row, place[feature]] = 1.0
    if unseen:  # as in training's encoding of a category it never saw: all its one-hot columns stay 0
        log.warning("categories not seen in training (encoded as all-zero): %s", sorted(unseen))
    return out

"""The sweep report's tables as text: markdown with every value in full, and rich tables that fit
the terminal without cutting a value. Each metric's best value is marked (bold) in both.

The tables come in as cells already formatted (`fmt`) and a mask of the best cells (`best_mask`),
so markdown and terminal show the same strings.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pandas as pd
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

# A rich table column takes its text plus one space either side and one rule; the table one more rule.
COLUMN_PADDING = 3
FAILED = ("failed", "unfinished")  # rows printed in red
JUSTIFY: dict[bool, JustifyMethod] = {True: "right", False: "left"}  # by: is the column numbers?
HEADERS = {"wall_time_s": "time_s"}  # the terminal's short names of columns that are not parameters


def fmt(v: object) -> str:
    """A cell as both tables show it: floats to 4 significant digits, missing values empty."""
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def best_mask(values: pd.DataFrame, directions: Mapping[str, str | None], eligible: pd.Series) -> pd.DataFrame:
    """True where a cell holds its column's best value among the `eligible` rows, by the column's
    direction ('min' or 'max'); columns without a known direction mark nothing."""
    mask = pd.DataFrame(False, index=values.index, columns=values.columns)
    for col, way in directions.items():
        if way is None or col not in values:
            continue
        v = pd.to_numeric(values[col], errors="coerce").where(eligible)
        if v.notna().any():
            mask[col] = v == v.agg(way)
    return mask


def md_table(cells: pd.DataFrame, best: pd.DataFrame) -> str:
    """A markdown table of the cells, in full; the best ones in **bold**."""
    head = "| " + " | ".join(map(str, cells.columns)) + " |\n|" + "---|" * len(cells.columns)
    text = cells.astype(str)  # an empty table keeps its columns' number types (no job finished)
    marked = text.where(~best, "**" + text + "**")
    rows = ["| " + " | ".join(row) + " |" for row in marked.itertuples(index=False)]
    return "\n".join([head, *rows])


def short_headers(columns: list[str], params: list[str]) -> dict[str, str]:
    """Terminal headers: a parameter by its last dotted part (`model.hidden_sizes` -> `hidden_sizes`)
    unless two parameters share it; metrics and the rest as they are (HEADERS shortens a few)."""
    last = {p: p.rsplit(".", 1)[-1] for p in params}
    shared = {name for name in last.values() if list(last.values()).count(name) > 1}
    return {c: last[c] if c in last and last[c] not in shared else HEADERS.get(c, c) for c in columns}


def column_groups(widths: Mapping[str, int], keys: list[str], width: int) -> list[list[str]]:
    """The columns, in order, split into tables that fit `width` characters, each starting with
    the `keys` (what names a row): a new table only when the next column would not fit. A column
    too wide for a table of its own gets one anyway, where rich folds it."""
    base = 1 + sum(widths[k] + COLUMN_PADDING for k in keys)
    groups, used = [list(keys)], base
    for col in (c for c in widths if c not in keys):
        need = widths[col] + COLUMN_PADDING
        if used + need > width and len(groups[-1]) > len(keys):
            groups.append(list(keys))
            used = base
        groups[-1].append(col)
        used += need
    return groups


@dataclass
class Layout:
    """How a table is shown on the terminal: short `headers`, the `keys` repeated in every part
    when it is split, the columns to right-justify (numbers)."""

    headers: Mapping[str, str]
    keys: list[str]
    right: Collection[str]


def rich_tables(cells: pd.DataFrame, best: pd.DataFrame, layout: Layout, title: str, width: int) -> list[Table]:
    """The cells as rich tables no wider than `width`, split by column_groups; every column as
    wide as its longest value, so no value is folded while the widths allow it."""
    headers = layout.headers
    widths = {c: max([len(headers[c]), *cells[c].map(len)]) for c in cells.columns}
    groups = column_groups(widths, layout.keys, width)
    red = cells["status"].isin(FAILED) if "status" in cells else pd.Series(False, index=cells.index)
    tables = []
    for k, cols in enumerate(groups, start=1):
        part = f" ({k}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=title + part)
        for c in cols:
            table.add_column(headers[c], justify=JUSTIFY[c in layout.right], min_width=widths[c], overflow="fold")
        for i in cells.index:
            row = [Text(cells.at[i, c], style="bold" if best.at[i, c] else "") for c in cols]
            table.add_row(*row, style="red" if red[i] else None)
        tables.append(table)
    return tables

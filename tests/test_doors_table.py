"""docs/faults.md's table of doors is the hostile-input suite's own: every `REFUSALS` row of
tests/test_user_errors.py and of every `tests/test_doors_*.py` module, grouped by door and input.
Fast: imports the modules, runs nothing.

`python tests/test_doors_table.py` writes the table into docs/faults.md after the suite changes.
"""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the tests' own helpers are imported as tests.helpers
    sys.path.insert(0, str(ROOT))

from tests.helpers.doors import Refusal  # noqa: E402

GUIDE = ROOT / "docs" / "faults.md"
BEGIN = "<!-- doors: written by `python tests/test_doors_table.py` from the suite's REFUSALS -->"
END = "<!-- doors: end -->"


# The command line's first doors (bad settings), then one module per door or group of doors.
MODULES = [ROOT / "tests" / "test_user_errors.py", *sorted((ROOT / "tests").glob("test_doors_*.py"))]


def refusals() -> list[Refusal]:
    """Every row of every hostile-input module, in module order."""
    rows: list[Refusal] = []
    for path in MODULES:
        module = importlib.import_module(f"tests.{path.stem}")
        rows += getattr(module, "REFUSALS", [])
    return rows


def table(rows: list[Refusal]) -> str:
    """One line per door and input, with the broken forms refused there: doors, inputs and forms in
    first-seen order, each door's inputs together."""
    by_door: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        seen = by_door.setdefault(row.door, {}).setdefault(row.reads, [])
        if row.form.value not in seen:
            seen.append(row.form.value)
    forms = {(door, reads): found for door, inputs in by_door.items() for reads, found in inputs.items()}
    doors = by_door
    lines = [
        f"{len(rows)} hostile inputs at {len(doors)} doors ({len(forms)} inputs), each refused as above:",
        "",
        "| door | input | broken forms refused |",
        "| --- | --- | --- |",
        *(f"| `{door}` | `{reads}` | {', '.join(found)} |" for (door, reads), found in forms.items()),
    ]
    return "\n".join(lines)


def section(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def test_every_door_module_has_rows():
    modules = [m for m in MODULES if m.name != Path(__file__).name]
    empty = [m.name for m in modules if not getattr(importlib.import_module(f"tests.{m.stem}"), "REFUSALS", None)]
    assert not empty, f"hostile-input modules without REFUSALS rows: {empty}"


def test_the_guide_lists_exactly_what_the_suite_tries():
    expected = table(refusals())
    assert section(GUIDE.read_text(encoding="utf-8")) == expected, (
        "docs/faults.md's table of doors is out of date: run `python tests/test_doors_table.py`"
    )


def test_row_ids_are_unique_within_a_module():
    for path in MODULES:
        rows = getattr(importlib.import_module(f"tests.{path.stem}"), "REFUSALS", [])
        ids = [(r.door, r.reads, r.form, r.says, r.args) for r in rows]
        assert len(ids) == len(set(ids)), f"{path.name} repeats a row"


if __name__ == "__main__":
    text = GUIDE.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    GUIDE.write_text(text[:start] + "\n" + table(refusals()) + "\n" + text[end:], encoding="utf-8")
    print(f"wrote {GUIDE.relative_to(ROOT)}'s table of doors")

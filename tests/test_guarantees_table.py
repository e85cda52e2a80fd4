"""docs/faults.md's table of what the tests prove names tests that exist. Fast: parses, runs nothing."""

import ast
import re

from tests.helpers.config import ROOT

DOC = ROOT / "docs" / "faults.md"
BEGIN, END = "<!-- guarantees: begin -->", "<!-- guarantees: end -->"


def named_tests() -> list[tuple[str, str]]:
    """(file, test function) of each row's Test column."""
    text = DOC.read_text()
    table = text[text.index(BEGIN) : text.index(END)]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`tests/" in line]
    found = []
    for row in rows:
        test = row.split("|")[2].strip().strip("`")
        path, name = test.split("::")
        found.append((path, re.sub(r"\[.*\]$", "", name)))  # a parametrized case names its function
    return found


def test_every_test_the_guarantee_table_names_exists():
    tests = named_tests()
    assert len(tests) >= 10, "the guarantees table lost its rows"
    for path, name in tests:
        module = ROOT / path
        assert module.is_file(), f"docs/faults.md names {path}, which does not exist"
        functions = {n.name for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"docs/faults.md names {path}::{name}, which does not exist"

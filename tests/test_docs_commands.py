"""Every command in the README's and the guides' code blocks runs as written from a checkout: each
file it names is shipped, made by an earlier command (under logs/), a placeholder for the user's
own (`DIR`, `NEW_ROWS.csv`, `<run>`, `...`), or one the text beside it says is the user's."""

import re
import shlex
from pathlib import Path

from tests.helpers.config import ROOT

# The settings whose value is a file or folder the command reads.
READS = ("data.path", "data.data_dir", "paths.data_dir", "input", "ckpt_path", "bundle", "model.init_from")
PLACEHOLDER = re.compile(r"[A-Z]{2,}|<|\$|\.\.\.|\*")  # DIR, NEW_ROWS.csv, <run>, $PWD, ..., globs
SAID_BESIDE = ("your own", "stands for", "of your")  # within a few lines of the block
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(doc: Path) -> list[tuple[int, str]]:
    """(line number, command) of each `litlab ...`/`python ...` line of the doc's shell blocks,
    continuation lines joined."""
    found, block, pending = [], False, ""
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if line.startswith("```"):
            block = not block and line.strip() in ("```bash", "```sh", "```")
            continue
        text = (pending + " " + line.split(" #")[0].strip()).strip() if block else ""
        if text.endswith("\\"):
            pending = text[:-1]
            continue
        pending = ""
        if re.match(r"(\$ )?(litlab|python) ", text):
            found.append((number, text))
    return found


def unshipped(command: str) -> list[str]:
    """The files `command` reads that a checkout does not have and that are no placeholder."""
    missing = []
    for token in shlex.split(command, posix=True):
        key, _, values = token.lstrip("+~").partition("=")
        for value in values.split(",") if key in READS else []:  # a sweep's values: each one
            made_or_named = value in ("", "latest", "null") or value.startswith("logs/") or PLACEHOLDER.search(value)
            if not made_or_named and not (ROOT / value).exists():
                missing.append(f"{key}={value}")
    return missing


def test_the_commands_of_the_docs_name_only_shipped_files_or_placeholders():
    wrong = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for number, command in commands(doc):
            beside = " ".join(lines[max(0, number - 12) : number + 8]).lower()
            for read in unshipped(command):
                if not any(words in beside for words in SAID_BESIDE):
                    wrong.append(f"{doc.relative_to(ROOT)}:{number}: {read}")
    assert not wrong, "\n".join(wrong)


def test_a_missing_file_is_found_and_a_placeholder_is_not():
    assert unshipped("litlab train data=csv data.path=examples/breast_cancer.csv") == []
    assert unshipped("litlab predict ckpt_path=latest input=NEW_ROWS.csv") == []
    assert unshipped('litlab train data=csv data.path="my table.csv"') == ["data.path=my table.csv"]
    assert unshipped("litlab train -m model.init_from=null,logs/a,b/c") == ["model.init_from=b/c"]
    assert len([c for doc in DOCS for c in commands(doc)]) > 50  # the blocks are read

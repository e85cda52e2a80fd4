"""Every relative link in README.md and docs/*.md points at a file that exists, and every guide
in docs/ is linked from the README. Fast: reads markdown only."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)  # fenced code blocks
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)  # `inline code`
# [text](target) and ![alt](target), with an optional "title"; <target> for targets with spaces.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)  # [label]: target
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")  # http:, https:, mailto:, //host


def link_targets(text: str) -> list[str]:
    """The link targets of a markdown text, code blocks and code spans left out."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    return [m.strip("<>") for m in INLINE.findall(text) + REFERENCE.findall(text)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not path or EXTERNAL.match(target):  # an anchor in the same page, or a URL
            continue
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        if not resolved.exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert broken_links(page) == [], f"{page.relative_to(ROOT)} links to files that do not exist"


def test_every_guide_is_linked_from_the_readme():
    linked = {(ROOT / unquote(t.split("#", 1)[0])).resolve() for t in link_targets((ROOT / "README.md").read_text())}
    guides = set((ROOT / "docs").glob("*.md"))
    assert sorted(p.name for p in guides if p.resolve() not in linked) == []


def test_the_link_finder_sees_what_it_must(tmp_path):
    """The checker itself: a broken link, a broken image, a reference link are found; anchors,
    URLs and links inside code are not checked."""
    page = tmp_path / "page.md"
    (tmp_path / "here.md").write_text("x")
    page.write_text(
        "[ok](here.md#part) [gone](missing.md) ![img](missing.png) [anchor](#top)\n"
        '[web](https://example.com/x.md) [titled](here.md "a title")\n'
        "`[code](nothere.md)`\n\n```\n[block](nothere.md)\n```\n\n[ref]: also_missing.md\n"
    )
    assert broken_links(page) == ["missing.md", "missing.png", "also_missing.md"]


def test_every_picture_in_docs_is_one_scripts_docs_figures_makes(monkeypatch):
    """So that none goes stale silently: `python scripts/tools/docs_figures.py` makes each one again."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts" / "tools"))
    import docs_figures

    made = {name for _, outputs in docs_figures.FIGURES.values() for name in outputs}
    assert made == {p.name for p in (ROOT / "docs").glob("*.png")}

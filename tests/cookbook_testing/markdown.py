"""The pages' Markdown as the reader sees it: which pages there are, their fences, headings
and prose, with snippets expanded and stored outputs inserted as the site build does.
One fence parser (sitebuild.outputs.fences) serves the build and the tests."""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path

from pytest_codeblocks import extract_from_buffer
from sitebuild.facts import facts, fill_in
from sitebuild.layout import DOCS, ROOT, lang_of, page_key
from sitebuild.outputs import fences as _fences
from sitebuild.outputs import insert_outputs, read_from

from cookbook_testing.config import expand

# Info strings that mean "this is Python": every such fence is executed or explicitly marked.
PYTHON_SYNTAX = {"python", "py", "python3", "pycon"}
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
HEADING_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}\s*$")
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.S)
MATH = re.compile(r"\$\$|(?<!\\)\$[^$\s][^$\n]*\$")


def has_math(text: str) -> bool:
    """TeX between dollars outside code (a shell's `$?` in inline code is not math)."""
    return MATH.search(CODE_SPAN.sub("", text)) is not None


def markdown_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def notebooks() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


# The one line in which a notebook's code differs between the languages: the first line of
# its language cell, which picks the labels that the cells below print and plot.
LANGUAGE_LINE = re.compile(r'\ALANG = "(\w+)"')


def notebook_code(path: Path) -> list[str]:
    """The sources of a notebook's code cells, with the value in the language cell's first
    line (`LANG = "ja"`) checked against the notebook's language and replaced by `...`: equal
    in both languages when nothing else differs. At most one language cell."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    chosen = [m[1] for s in sources if (m := LANGUAGE_LINE.match(s))]
    assert chosen in ([], [lang_of(path)]), f"{path.name}: language cells {chosen}"
    return [LANGUAGE_LINE.sub('LANG = "..."', s) for s in sources]


@functools.cache
def expanded(path: Path) -> str:
    """The page as the reader sees it: stored outputs inserted (as hooks/outputs.py does),
    snippets expanded; a missing output shows the command that writes it."""
    text, _ = insert_outputs(path.read_text(encoding="utf-8"), page_key(path), read_from(ROOT))
    return expand(fill_in(text, facts(), page_key(path)))


@functools.cache
def _code_expanded(path: Path) -> str:
    """The page with its snippets expanded and its output marks left as they are: what the
    blocks are read from, so that a missing output file fails that block's test only."""
    return expand(path.read_text(encoding="utf-8"))


def fences(text: str) -> list[tuple[int, str, str]]:
    """Every fenced block: (line number, info string, body). Independent of the extractor."""
    return [(f.start + 1, f.info, f.body) for f in _fences(text)]


def is_python(info: str) -> bool:
    return re.split(r"[\s{]", info.strip(), maxsplit=1)[0].lower() in PYTHON_SYNTAX


def prose_lines(text: str) -> list[str]:
    """Lines outside fenced blocks."""
    inside = {i for f in _fences(text) for i in range(f.start, f.end + 1)}
    return [line for i, line in enumerate(text.split("\n")) if i not in inside]


def headings(text: str) -> list[tuple[int, str, str | None]]:
    """(level, title, explicit id or None) for every Markdown heading outside fences."""
    out = []
    for line in prose_lines(text):
        m = HEADING.match(line)
        if m:
            idm = HEADING_ID.search(m[2])
            out.append((len(m[1]), m[2], idm[1] if idm else None))
    return out


def raw_blocks(path: Path) -> list[tuple[str, list[str]]]:
    """(code, marks) of every fence before snippet expansion: the include lines and marks."""
    return [(code, list(marks)) for code, marks in _raw_blocks(path, path.stat().st_mtime_ns)]


@functools.cache  # collection asks for every page once per snippet file
def _raw_blocks(path: Path, mtime_ns: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    text = path.read_text(encoding="utf-8")
    return tuple((cb.code, tuple(cb.marks)) for cb in extract_from_buffer(io.StringIO(text)))


def python_fence_count(path: Path) -> int:
    """Python fences as the Markdown holds them, counted without the extractor."""
    return sum(is_python(info) for _, info, _ in fences(_code_expanded(path)))


def pages_by_key() -> dict[str, dict[str, Path]]:
    out: dict[str, dict[str, Path]] = {}
    for p in markdown_pages() + notebooks():
        out.setdefault(page_key(p), {})[lang_of(p)] = p
    return out

"""A page says that a block has an output with one line after its fence, `<!--output-->`;
the output itself is the file that `make outputs` stored for that block
(sitebuild.layout.output_path: page + section), inserted as a text block titled in the page's
language. The site build (hooks/outputs.py) and the tests (cookbook_testing) use this same
function, so the reader and the tests see the same page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sitebuild import layout

FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$")


@dataclass
class Fence:
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence
    indent: str
    info: str
    body: str


def fences(text: str) -> list[Fence]:
    """Every fenced block of a Markdown text, in order."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(m["ticks"]):
                line = lines[i]
                body.append(line[len(m["indent"]):] if line.startswith(m["indent"]) else line)
                i += 1
            out.append(Fence(start, i, m["indent"], m["info"].strip(), "\n".join(body)))
        i += 1
    return out


class OutputMarkError(ValueError):
    """An output mark that follows no block embedding a snippet section."""


def marked_outputs(text: str) -> dict[int, str]:
    """{line index of the opening fence: its section} for every fence followed by the output
    mark (blank lines between allowed). Raises OutputMarkError for a mark elsewhere."""
    lines = text.split("\n")
    by_end = {f.end: f for f in fences(text)}
    out = {}
    for i, line in enumerate(lines):
        if line.strip() != layout.OUTPUT_MARK:
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        fence = by_end.get(j)
        targets = layout.includes(fence.body) if fence else []
        section = layout.split_include(targets[0])[1] if len(targets) == 1 else None
        if section is None:
            raise OutputMarkError(f"line {i + 1}: {layout.OUTPUT_MARK} must follow a code block "
                                  f"that embeds one snippet section")
        out[fence.start] = section
    return out


MISSING = "(no stored output: run `{command}`)"


def insert_outputs(text: str, page: str, read: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """The page with each output mark replaced by its stored output, in a ```text block titled
    "Output" / "出力" as the page's language says; `read(path)` gives the file's text, None if it
    is missing. Returns the text and the output files that were missing (their block says
    which command writes them)."""
    marks = marked_outputs(text)
    if not marks:
        return text, []
    lines = text.split("\n")
    by_start = {f.start: f for f in fences(text)}
    title = layout.OUTPUT_TITLE[layout.lang_of(page)]
    missing, out, pending = [], [], None
    for i, line in enumerate(lines):
        if i in marks:
            pending = layout.output_path(page, marks[i]), by_start[i].indent
        if line.strip() == layout.OUTPUT_MARK and pending:
            path, indent = pending
            pending = None
            stored = read(path)
            if stored is None:
                missing.append(path)
                stored = MISSING.format(command=layout.outputs_command(page))
            body = stored.rstrip("\n").split("\n")
            out += [f'{indent}```text title="{title}"', *(indent + b if b else b for b in body),
                    f"{indent}```"]
            continue
        out.append(line)
    return "\n".join(out), missing


def read_from(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        file = root / path
        return file.read_text(encoding="utf-8") if file.is_file() else None
    return read

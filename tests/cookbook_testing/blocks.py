"""A page's executable blocks: the Block model, the marks a block may carry, and reading the
blocks of a page (pytest-codeblocks' extractor on the snippet-expanded page)."""

from __future__ import annotations

import builtins
import importlib.util
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_codeblocks import extract_from_buffer
from sitebuild.layout import DOCS, ROOT, includes, output_path, page_key
from sitebuild.outputs import marked_outputs

from cookbook_testing.markdown import _code_expanded, is_python


@dataclass
class Block:
    """One executable Python block of a page, after snippet expansion."""

    page: str  # the page, whatever its language: "recipes/save-and-resume.md"
    index: int
    lineno: int
    code: str
    marks: list = field(default_factory=list)
    section: str = ""  # the snippet section it embeds: "load_separately"
    output_file: str | None = None  # where its output is stored, if the page shows one: "outputs/..."
    importorskip: str | None = None  # pytest-codeblocks' importorskip(module): skipped without it

    def stored_output(self) -> str | None:
        """The output the page shows under the block; None if the file is not written yet."""
        file = ROOT / self.output_file
        return file.read_text(encoding="utf-8") if file.is_file() else None

    @property
    def id(self) -> str:
        """recipes/save-and-resume.md::load_separately: the English page and the section."""
        return f"{self.page}::{self.section or self.index}"

    @property
    def cuda(self) -> bool:
        return any(m.name == "cuda" for m in self.marks)

    @property
    def raises(self):
        for m in self.marks:
            if m.name == "raises":
                return m.args[0]
        return None

    @property
    def skip_reason(self) -> str | None:
        """Why this block does not run on this machine, or None if it does."""
        from cookbook_testing.devices import cuda_available
        for m in self.marks:
            if m.name == "skipif" and m.args[0]:
                return m.kwargs["reason"]
        if self.importorskip and importlib.util.find_spec(self.importorskip) is None:
            return f"needs the module {self.importorskip} (pytest-codeblocks:importorskip)"
        if self.cuda and not cuda_available():
            return "needs CUDA"
        return None


def in_colab() -> bool:
    """Whether google.colab can be imported: a Colab runtime."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no `google` package at all
        return False


# Every mark a page block can carry, written `<!--pytest.mark.NAME-->` before its fence, and
# the pytest marks it stands for. CONTRIBUTING.md explains each; anything else is an error.
def _block_marks() -> dict:
    from cookbook_testing.devices import cuda_available, gpu_count
    return {
        "cuda": [pytest.mark.cuda],
        "two_gpus": [pytest.mark.skipif(gpu_count() < 2, reason="needs two CUDA devices")],
        "colab": [pytest.mark.skipif(
            not in_colab(), reason="needs a Colab runtime (google.colab): Drive mounts only there")],
        "fork_launch": [pytest.mark.skipif(
            cuda_available(), reason="fork-based launch: a process that used CUDA cannot fork; "
                                     "the CPU job (`make test`) runs this block")],
    }


_MARK = re.compile(r"pytest\.mark\.(\w+)(?:\((\w+)\))?\Z")


def parse_mark(text: str) -> list:
    """`pytest.mark.cuda` or `pytest.mark.raises(RuntimeError)` -> pytest marks; no eval."""
    m = _MARK.match(text.strip())
    if not m:
        raise ValueError(f"unreadable block mark {text!r} (see CONTRIBUTING.md)")
    name, arg = m.groups()
    if name == "raises":
        exc = getattr(builtins, arg or "", None)
        if not (isinstance(exc, type) and issubclass(exc, BaseException)):
            raise ValueError(f"raises({arg}): name a built-in exception (see CONTRIBUTING.md)")
        return [pytest.mark.raises.with_args(exc).mark]
    known = _block_marks()
    if name not in known or arg:
        raise ValueError(f"unknown block mark {text!r}: the marks are raises(<built-in "
                         f"exception>), {', '.join(known)} (see CONTRIBUTING.md)")
    return [mark.mark for mark in known[name]]


def page_blocks(path: Path) -> list[Block]:
    """Python blocks of one page, as pytest-codeblocks reads them, whatever the info string.
    A block followed by the output mark has the output file of its page and section."""
    text = path.read_text(encoding="utf-8")
    found = extract_from_buffer(io.StringIO(_code_expanded(path)))
    raw = extract_from_buffer(io.StringIO(text))
    with_output = marked_outputs(text)  # {fence line index: section}
    blocks = []
    for cb, rcb in zip(found, raw, strict=True):
        if cb.syntax is None or not is_python(cb.syntax):
            continue
        if rcb.expected_output is not None:
            raise ValueError(f"{path.relative_to(DOCS)}, line {rcb.lineno}: an output is not typed "
                             f"on the page: write {OUTPUT_MARK_HELP}")
        (include,) = includes(rcb.code) or [""]
        section = include.split(":", 1)[1] if ":" in include else ""
        has_output = rcb.lineno - 1 in with_output
        blocks.append(Block(page_key(path), len(blocks), cb.lineno, cb.code,
                            [m for text in cb.marks for m in parse_mark(text)], section,
                            output_path(path, section) if has_output else None, cb.importorskip))
    return blocks


OUTPUT_MARK_HELP = "<!--output--> on the line after the block's fence (see CONTRIBUTING.md)"


def normalise_output(text: str) -> str:
    """Trailing spaces and blank lines at either end do not count; leading spaces do."""
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")

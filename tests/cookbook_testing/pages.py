"""The pages as the reader sees them: snippet expansion, code blocks, headings.

Only needs Markdown, pymdown-extensions, PyYAML and pytest-codeblocks, so that the page
blocks also run on a GPU machine that has its own torch and no MkDocs.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib.util
import io
import json
import os
import re
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import markdown
import pytest
import yaml
from pytest_codeblocks import extract_from_buffer
from sitebuild.layout import (DOCS, INCLUDE, LANGS, ROOT, SECTION, SNIPPETS, both_languages,  # noqa: F401
                              includes, lang_of, output_path, outputs_command, page_key, site_path)
from sitebuild.outputs import insert_outputs, marked_outputs, read_from

# Info strings that mean "this is Python": every such fence is executed or explicitly marked.
PYTHON_SYNTAX = {"python", "py", "python3", "pycon"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
HEADING_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}\s*$")


CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.S)
MATH = re.compile(r"\$\$|(?<!\\)\$[^$\s][^$\n]*\$")


def has_math(text: str) -> bool:
    """TeX between dollars outside code (a shell's `$?` in inline code is not math)."""
    return MATH.search(CODE_SPAN.sub("", text)) is not None


base_key = page_key  # docs/recipes/x.ja.md -> recipes/x.md: the page, whatever its language


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


def snippet_files() -> list[Path]:
    return sorted(p for p in SNIPPETS.rglob("*.py") if "__pycache__" not in p.parts)


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml without MkDocs: its custom tags become plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return value.replace("$config_dir", str(ROOT)) if suffix == "relative" else value
    if isinstance(node, yaml.SequenceNode):
        seq = loader.construct_sequence(node)
        return seq[-1] if suffix == "ENV" else seq  # !ENV [NAME, default] -> default
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", lambda l, s, n: _tag(l, s, n))
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda l, s, n: None)


@functools.cache
def mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)


@functools.cache
def snippets_config() -> dict:
    for ext in mkdocs_config()["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            return dict(ext["pymdownx.snippets"])
    raise AssertionError("pymdownx.snippets is not configured in mkdocs.yml")


def expand(text: str) -> str:
    """Expand --8<-- includes exactly as the site build does (same extension, same options)."""
    md = markdown.Markdown(extensions=["pymdownx.snippets"],
                           extension_configs={"pymdownx.snippets": snippets_config()})
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


@functools.cache
def expanded(path: Path) -> str:
    """The page as the reader sees it: stored outputs inserted (as hooks/outputs.py does),
    snippets expanded; a missing output shows the command that writes it."""
    text, _ = insert_outputs(path.read_text(encoding="utf-8"), page_key(path), read_from(ROOT))
    return expand(text)


@functools.cache
def _code_expanded(path: Path) -> str:
    """The page with its snippets expanded and its output marks left as they are: what the
    blocks are read from, so that a missing output file fails that block's test only."""
    return expand(path.read_text(encoding="utf-8"))


def fences(text: str) -> list[tuple[int, str, str]]:
    """Every fenced block: (line number, info string, body). Independent of the extractor."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            ticks, start = m["ticks"], i
            i += 1
            body = []
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                body.append(lines[i][len(m["indent"]):] if lines[i].startswith(m["indent"]) else lines[i])
                i += 1
            out.append((start + 1, m["info"].strip(), "\n".join(body)))
        i += 1
    return out


def is_python(info: str) -> bool:
    return re.split(r"[\s{]", info.strip(), maxsplit=1)[0].lower() in PYTHON_SYNTAX


def prose_lines(text: str) -> list[str]:
    """Lines outside fenced blocks."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m["ticks"]
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            out.append(line)
    return out


def headings(text: str) -> list[tuple[int, str, str | None]]:
    """(level, title, explicit id or None) for every Markdown heading outside fences."""
    out = []
    for line in prose_lines(text):
        m = HEADING.match(line)
        if m:
            idm = HEADING_ID.search(m[2])
            out.append((len(m[1]), m[2], idm[1] if idm else None))
    return out


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


# Every mark a page block can carry, written `<!--pytest.mark.NAME-->` before its fence, and
# the pytest marks it stands for. CONTRIBUTING.md explains each; anything else is an error.
def _block_marks() -> dict:
    from cookbook_testing.devices import cuda_available, gpu_count
    return {
        "cuda": [pytest.mark.cuda],
        "two_gpus": [pytest.mark.skipif(gpu_count() < 2, reason="needs two CUDA devices")],
        "fork_launch": [pytest.mark.skipif(
            cuda_available(), reason="fork-based launch: a process that used CUDA cannot fork; "
                                     "on GPU machines tests/test_distributed.py runs these with spawn")],
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


def run_block(block: Block, namespace: dict, cwd: Path) -> tuple[str, BaseException | None]:
    """Execute one block as a reader pasting it would: (what it printed, the error it raised).

    For a block marked raises(Exc), what it printed ends with the exception's last line,
    as the page shows it."""
    stdout = io.StringIO()
    error = None
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout):
            exec(compile(block.code, block.id, "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 - the caller compares it with the page
        error = exc
    finally:
        os.chdir(old)
    shown = stdout.getvalue()
    if error is not None and block.raises is not None and isinstance(error, block.raises):
        shown += "".join(traceback.format_exception_only(type(error), error))
    return shown, error


def raw_blocks(path: Path) -> list[tuple[str, list[str]]]:
    """(code, marks) of every fence before snippet expansion: the include lines and marks."""
    return [(code, list(marks)) for code, marks in _raw_blocks(path, path.stat().st_mtime_ns)]


@functools.cache  # collection asks for every page once per snippet file
def _raw_blocks(path: Path, mtime_ns: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    text = path.read_text(encoding="utf-8")
    return tuple((cb.code, tuple(cb.marks)) for cb in extract_from_buffer(io.StringIO(text)))


def python_fence_count(path: Path) -> int:
    """Python fences as the Markdown holds them, counted without the extractor."""
    return sum(is_python(info) for _, info, _ in fences(expanded(path)))


def pages_by_key() -> dict[str, dict[str, Path]]:
    out: dict[str, dict[str, Path]] = {}
    for p in markdown_pages() + notebooks():
        out.setdefault(base_key(p), {})[lang_of(p)] = p
    return out


def snippet_sections(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (start line index, end line index) of the named sections of a snippet file."""
    starts, out = {}, {}
    for i, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        m = SECTION.search(line)
        if m and m[1] == "start":
            starts[m[2]] = i
        elif m:
            out[m[2]] = (starts.pop(m[2]), i)
    return out


def section_source(path: Path, *names: str) -> str:
    """The code of named sections of a snippet file, dedented as the page shows it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    sections = snippet_sections(path)
    return "\n\n".join(textwrap.dedent("\n".join(lines[sections[n][0] + 1:sections[n][1]]))
                       for n in names)


def load_module(path: Path, name: str):
    """Import a file that is not on the path (a script or a snippet) as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(text: str) -> str:
    return "\n".join(line.rstrip() for line in _ANSI.sub("", text).split("\n"))


def assert_quoted(page: str, *texts: str) -> None:
    """Each text (a message as a terminal shows it) stands verbatim on the page in both
    languages, as the reader sees it: after snippet and output expansion."""
    for path in both_languages(page):
        shown = _plain(expanded(path))
        for text in texts:
            assert _plain(text) in shown, f"{path.relative_to(DOCS)} does not quote {text!r}"


def program_env() -> dict:
    """The environment for a program in tests/programs: the test helpers and the recipes'
    function files importable by name."""
    ours = [str(ROOT / "tests"), str(ROOT / "hooks"), str(SNIPPETS / "recipes")]
    theirs = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # a GPU box's
    return {**os.environ, "PYTHONPATH": os.pathsep.join(ours + theirs)}

"""Every snippet file is embedded by a page, and runs standalone as a script."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sitebuild.layout import LIBRARY
from cookbook_testing.pages import (DOCS, ROOT, SECTION, SNIPPETS, includes, lang_of, markdown_pages, page_blocks,
                                    raw_blocks, snippet_files, snippet_sections)

INCLUDED = [inc for page in markdown_pages() for inc in includes(page.read_text(encoding="utf-8"))]


def _rel(path):
    return path.relative_to(SNIPPETS).as_posix()


def cuda_sections(path) -> set[str]:
    """Sections that pages embed only in blocks marked cuda."""
    rel = _rel(path)
    return {inc.split(":", 1)[1]
            for page in markdown_pages()
            for code, marks in raw_blocks(page) if "pytest.mark.cuda" in marks
            for inc in includes(code) if inc.startswith(rel + ":")}


@pytest.mark.parametrize("path", snippet_files(), ids=_rel)
def test_snippet_is_embedded_by_a_page(path):
    rel = _rel(path)
    assert any(inc == rel or inc.startswith(rel + ":") for inc in INCLUDED), f"{rel} is on no page"
    sections = snippet_sections(path)
    used = {inc.split(":", 1)[1] for inc in INCLUDED if inc.startswith(rel + ":")}
    assert set(sections) <= used, f"sections on no page: {sorted(set(sections) - used)}"


def _run(paths, tmp_path):
    """Run snippet files as scripts, in order, in one new interpreter, each as __main__ (as
    `python file.py` would): a downloaded recipe runs as it is, CUDA sections guarded."""
    scripts = [str(p) for p in paths]
    runner = ("import os, runpy, sys\n"
              "for s in sys.argv[1:]:\n"
              "    d = os.path.basename(os.path.dirname(s))  # one folder per snippet folder\n"
              "    os.makedirs(d, exist_ok=True); os.chdir(d)\n"
              "    sys.path.insert(0, os.path.dirname(s))  # as `python s` does\n"
              "    runpy.run_path(s, run_name='__main__')\n"
              "    sys.path.pop(0); os.chdir('..')")
    proc = subprocess.run([sys.executable, "-c", runner, *scripts], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**_env(), "PYTHONPATH": os.pathsep.join(
                              [str(ROOT), str(LIBRARY)])})
    assert proc.returncode == 0, proc.stderr[-3000:]


def run_whole_by_its_page(path) -> str | None:
    """Why running this file as a script would repeat its page's test, or None.

    It does when every line of code in the file is in a section, one page embeds the file
    and no other, that page's blocks are the file's sections in file order, each once, and no
    block raises, needs a GPU or is skipped on this machine. tests/harness/test_pages.py runs those
    blocks in order in one fresh namespace named __main__, in a temporary directory, as
    `python file.py` runs the file: the script is the page run."""
    text = path.read_text(encoding="utf-8")
    inside = {i for a, b in snippet_sections(path).values() for i in range(a, b + 1)}
    if any(line.strip() and not line.strip().startswith("#")
           for i, line in enumerate(text.split("\n")) if i not in inside):
        return None
    rel = _rel(path)
    pages = [p for p in markdown_pages() if lang_of(p) == "en"
             and any(inc.split(":")[0] == rel for inc in includes(p.read_text(encoding="utf-8")))]
    if len(pages) != 1:
        return None
    files = {inc.split(":")[0] for inc in includes(pages[0].read_text(encoding="utf-8"))
             if inc.split(":")[0].endswith(".py")}
    blocks = page_blocks(pages[0])
    # A block that runs here unmarked or marked only to be skipped elsewhere (fork_launch on a
    # GPU machine) runs as the script would; one that raises or is skipped here does not.
    if files != {rel} or any(b.raises or b.skip_reason or b.cuda for b in blocks) \
            or [b.section for b in blocks] != list(snippet_sections(path)):
        return None
    return f"{rel} is run whole, in order, by {pages[0].relative_to(DOCS).as_posix()}"


# The other files run in two interpreters, one per xdist worker, one after the other (importing
# torch is most of a small script's time); the recipes that fork ranks run alone.
ALONE = {SNIPPETS / "scale" / "distributed.py", SNIPPETS / "recipes" / "preemption.py"}
_SCRIPTS = [p for p in snippet_files() if not run_whole_by_its_page(p)]
_SECTIONS = sorted({p.relative_to(SNIPPETS).parts[0] for p in _SCRIPTS})
STANDALONE = [[p] for p in _SCRIPTS if p in ALONE] + [
    [p for p in _SCRIPTS if p.relative_to(SNIPPETS).parts[0] in _SECTIONS[half::2]
     and p not in ALONE] for half in (0, 1)]


@pytest.mark.parametrize("path", [p for p in snippet_files() if p not in _SCRIPTS], ids=_rel)
def test_a_file_not_run_as_a_script_is_its_page_line_for_line(path):
    """What run_whole_by_its_page concludes, checked on the text: the page's blocks, in
    order, are the file's code lines, every one (only comments outside sections differ)."""
    page = DOCS / run_whole_by_its_page(path).rsplit(" by ", 1)[1]
    lines = path.read_text(encoding="utf-8").split("\n")
    inside = sorted({i for a, b in snippet_sections(path).values() for i in range(a, b + 1)})
    code = [lines[i] for i in inside if lines[i].strip() and not SECTION.search(lines[i])]
    shown = [line for block in page_blocks(page) for line in block.code.split("\n") if line.strip()]
    assert shown == code


def _env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.slow
@pytest.mark.parametrize("paths", STANDALONE,
                         ids=lambda ps: _rel(ps[0]) if len(ps) == 1
                         else "+".join(dict.fromkeys(_rel(p).split("/")[0] for p in ps)))
def test_snippet_runs_standalone(paths, tmp_path):
    """Without CUDA, the sections that pages mark cuda are skipped by their own guard."""
    _run(paths, tmp_path)


@pytest.mark.cuda
@pytest.mark.parametrize("path", [p for p in snippet_files() if cuda_sections(p)], ids=_rel)
def test_snippet_runs_standalone_with_cuda_sections(path, tmp_path):
    """On a GPU machine (make test-gpu), the same files with their CUDA sections run."""
    _run([path], tmp_path)


@pytest.mark.parametrize("path", snippet_files(), ids=_rel)
def test_sections_are_in_page_order(path):
    """A snippet file runs top to bottom like its page: its sections in the order the
    pages embed them."""
    rel = _rel(path)
    sections = list(snippet_sections(path))
    for page in markdown_pages():
        embedded = [inc.split(":", 1)[1] for inc in includes(page.read_text(encoding="utf-8"))
                    if inc.startswith(rel + ":")]
        assert [s for s in sections if s in embedded] == embedded, page.name

"""Every snippet file is embedded by a page, and runs standalone as a script."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cookbook_testing.pages import ROOT, SNIPPETS, includes, markdown_pages, raw_blocks, snippet_files, snippet_sections

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
                              [str(ROOT), str(SNIPPETS / "recipes")])})
    assert proc.returncode == 0, proc.stderr[-3000:]


# The files of one section run in one interpreter, one after the other (torch is imported once,
# which is most of a small script's time); the distributed recipe forks, so it runs alone.
# A section whose files import the recipes' library runs with the recipes.
ALONE = {SNIPPETS / "scale" / "distributed.py"}
RUNS_WITH = {"changes": "recipes"}


def _group(path):
    section = path.relative_to(SNIPPETS).parts[0]
    return RUNS_WITH.get(section, section)


STANDALONE = [[p] for p in snippet_files() if p in ALONE] + [
    [p for p in snippet_files() if _group(p) == group and p not in ALONE]
    for group in sorted({_group(p) for p in snippet_files()})]


def _env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.parametrize("paths", STANDALONE,
                         ids=lambda ps: _rel(ps[0]) if len(ps) == 1 else _group(ps[0]))
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

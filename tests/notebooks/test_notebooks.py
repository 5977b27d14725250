"""The notebooks under docs/: they run top to bottom, and what the site shows is what they print.

The site renders the outputs stored in the notebooks (mkdocs-jupyter, `execute: false`), so
these tests execute every notebook afresh with nbclient (any error fails), require the stored
text outputs to equal the fresh ones (images: present in both), and forbid stored errors.
Refresh the stored outputs with `make notebooks` (scripts/run_notebooks.py).

The Japanese twin has the same code but for its language cell (`LANG = "ja"`, which picks
the labels printed and plotted). It is not executed again from the top: after the English
notebook, the same kernel runs the Japanese cells that use the language (LANG or LABELS),
and their outputs must be the stored Japanese ones; every other cell's stored outputs must
equal the English ones. The figures of both languages must plot the same numbers, and the
Japanese one must draw every glyph (no "missing from font" warning).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cookbook_testing.pages import ROOT, load_module, notebook_code, notebooks
from sitebuild.layout import in_lang

pytest.importorskip("nbclient", reason="nbclient is in requirements.txt (make test)")
pytestmark = pytest.mark.slow

NOTEBOOKS = notebooks()
PAIRS = sorted({in_lang(p, "en") for p in NOTEBOOKS})
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
USES_LANGUAGE = re.compile(r"\b(LANG|LABELS)\b")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# Run in the kernel after a notebook: the numbers and words of its figures; with DRAW, the
# figures drawn again (small: laying out the text is what warns "Glyph ... missing from font(s)
# ...") with every warning recorded.
FIGURE_PROBE = """\
import io as _io, json as _json, warnings as _warnings
from matplotlib.figure import Figure as _Figure
_figures = [v for k, v in list(globals().items()) if k[0] != "_" and isinstance(v, _Figure)]
with _warnings.catch_warnings(record=True) as _caught:
    _warnings.simplefilter("always")
    for _f in _figures if DRAW else ():
        _f.savefig(_io.BytesIO(), format="png", dpi=20)
print(_json.dumps({
    "numbers": [[line.get_xydata().tolist() for ax in _f.axes for line in ax.lines]
                for _f in _figures],
    "words": [[w for ax in _f.axes for w in (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(),
               *(t.get_text() for t in (ax.get_legend().get_texts() if ax.get_legend() else ())))]
              for _f in _figures],
    "warnings": [str(w.message) for w in _caught]}))
"""


def _runner():
    return load_module(ROOT / "scripts" / "run_notebooks.py", "run_notebooks")


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def _outputs(cell: dict) -> list[tuple]:
    """A cell's outputs in comparable form: streams joined, images by presence only."""
    out: list[tuple] = []
    for o in cell.get("outputs", []):
        kind = o["output_type"]
        if kind == "stream":
            if out and out[-1][:2] == ("stream", o["name"]):  # chunking varies run to run
                out[-1] = ("stream", o["name"], out[-1][2] + _text(o["text"]))
            else:
                out.append(("stream", o["name"], _text(o["text"])))
        elif kind in ("display_data", "execute_result"):
            data = o["data"]
            images = tuple(sorted(t for t in data if t in IMAGE_TYPES))
            text = None if images else _text(data.get("text/plain", ""))
            out.append((kind, images, text))
        else:
            out.append((kind, o.get("ename"), o.get("evalue")))
    return out


def _id(p: Path) -> str:
    return p.relative_to(ROOT / "docs").as_posix()


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_stored_outputs_hold_no_error(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(_code_cells(nb)):
        assert cell["execution_count"] is not None, f"code cell {i} was never executed"
        for o in cell["outputs"]:
            assert o["output_type"] != "error", f"code cell {i} stores an error: {o.get('ename')}"
            if o["output_type"] == "stream":
                assert "Traceback" not in _text(o["text"]), f"code cell {i} stores a traceback"


def _japanese(en: Path) -> Path:
    return in_lang(en, "ja")


def _probe(cell) -> dict:
    return json.loads("".join(o["text"] for o in cell["outputs"] if o["output_type"] == "stream"))


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.verifies(_id(p))) for p in PAIRS],
                         ids=_id)
def test_notebook_runs_and_stored_outputs_are_current(path):
    """The English notebook runs; then, in the same kernel, the Japanese cells that use the
    language (see the module's docstring); the other Japanese cells are compared below."""
    nbformat = pytest.importorskip("nbformat")
    stored = json.loads(path.read_text(encoding="utf-8"))
    ja_stored = _code_cells(json.loads(_japanese(path).read_text(encoding="utf-8")))
    ja_index = [i for i, c in enumerate(ja_stored) if USES_LANGUAGE.search(_text(c["source"]))]
    nb = nbformat.read(path, as_version=4)
    ja_cells = _code_cells(nbformat.read(_japanese(path), as_version=4))  # executed in place
    nb.cells += [nbformat.v4.new_code_cell("DRAW = False\n" + FIGURE_PROBE),
                 *(ja_cells[i] for i in ja_index),
                 nbformat.v4.new_code_cell("DRAW = True\n" + FIGURE_PROBE)]
    fresh = _code_cells(_runner().execute(path, nb))  # raises CellExecutionError on any failing cell
    stored_cells = _code_cells(stored)
    fresh_cells, (en_probe, *fresh_ja, ja_probe) = (fresh[:len(stored_cells)],
                                                    fresh[len(stored_cells):])
    for i, (f, s) in enumerate(zip(fresh_cells, stored_cells)):
        assert _outputs(s) == _outputs(f), (
            f"{_id(path)}, code cell {i}: stored outputs are stale; run `make notebooks`")
    for i, f in zip(ja_index, fresh_ja):
        assert _outputs(ja_stored[i]) == _outputs(f), (
            f"{_id(_japanese(path))}, code cell {i}: stored outputs are stale; run `make notebooks`")
    en, ja = _probe(en_probe), _probe(ja_probe)
    assert ja["warnings"] == [], "the Japanese figure misses glyphs (or warns)"
    assert ja["numbers"] == en["numbers"], "the figures plot different numbers"
    if ja_index and en["words"]:  # a notebook with a language cell: its figures in Japanese
        assert en["words"] != ja["words"]
        assert [w for f in ja["words"] for w in f if w and not w.startswith("$")
                and not JAPANESE.search(w)] == [], "English words in the Japanese figure"


@pytest.mark.parametrize("en", PAIRS, ids=_id)
def test_languages_share_code_and_outputs(en):
    """The same code but for the language cell; the same outputs but for the cells that use
    the language (their Japanese outputs are checked fresh above), whose images differ."""
    ja = _japanese(en)
    assert en.exists() and ja.exists()
    assert notebook_code(en) == notebook_code(ja)
    cells = [_code_cells(json.loads(p.read_text(encoding="utf-8"))) for p in (en, ja)]
    for i, (e, j) in enumerate(zip(*cells)):
        if not USES_LANGUAGE.search(_text(e["source"])):
            assert _outputs(e) == _outputs(j), f"code cell {i}"
            continue
        assert [o[:2] for o in _outputs(e)] == [o[:2] for o in _outputs(j)], f"code cell {i}"
        images = [[o["data"][t] for o in c["outputs"] for t in IMAGE_TYPES if t in o.get("data", {})]
                  for c in (e, j)]
        assert all(a != b for a, b in zip(*images)), f"code cell {i}: the same image in both"

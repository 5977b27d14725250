"""The notebooks under docs/: they run top to bottom, and what the site shows is what they print.

The site renders the outputs stored in the notebooks (mkdocs-jupyter, `execute: false`), so
these tests execute every notebook afresh with nbclient (any error fails), require the stored
text outputs to equal the fresh ones (images: present in both), and forbid stored errors.
Refresh the stored outputs with `make notebooks` (scripts/run_notebooks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cookbook_testing.pages import ROOT, load_module, notebooks

pytest.importorskip("nbclient", reason="nbclient is in requirements.txt (make test)")

NOTEBOOKS = notebooks()
PAIRS = sorted({p.with_name(p.name.replace(".ja.ipynb", ".ipynb")) for p in NOTEBOOKS})
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


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


@pytest.mark.parametrize("path", PAIRS, ids=_id)
def test_notebook_runs_and_stored_outputs_are_current(path):
    """The English notebook runs; the Japanese one has the same code and outputs (below)."""
    fresh = _runner().execute(path)  # raises CellExecutionError on any failing cell
    stored = json.loads(path.read_text(encoding="utf-8"))
    fresh_cells, stored_cells = _code_cells(fresh), _code_cells(stored)
    assert len(fresh_cells) == len(stored_cells)
    for i, (f, s) in enumerate(zip(fresh_cells, stored_cells)):
        assert _outputs(s) == _outputs(f), (
            f"{_id(path)}, code cell {i}: stored outputs are stale; run `make notebooks`")


@pytest.mark.parametrize("en", PAIRS, ids=_id)
def test_languages_share_code_and_outputs(en):
    ja = en.with_name(en.name.replace(".ipynb", ".ja.ipynb"))
    assert en.exists() and ja.exists()
    cells = [_code_cells(json.loads(p.read_text(encoding="utf-8"))) for p in (en, ja)]
    assert [_text(c["source"]) for c in cells[0]] == [_text(c["source"]) for c in cells[1]]
    assert [_outputs(c) for c in cells[0]] == [_outputs(c) for c in cells[1]]

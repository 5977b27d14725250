"""Execute every docs/**/*.ipynb top to bottom and store its outputs in place (`make notebooks`).

The site shows the stored outputs (mkdocs-jupyter runs with `execute: false`), and
tests/notebooks/test_notebooks.py checks that they are what a fresh execution prints. A cell that
raises stops the run and leaves the notebook file untouched. The kernel is `python3` of the
interpreter running this script; seeds are set inside the notebooks; PYTHONHASHSEED is fixed.

    python scripts/run_notebooks.py                  # every notebook
    python scripts/run_notebooks.py docs/notebooks/x.ipynb ...
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT_S = 120  # per cell


def notebooks() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def execute(path: Path, nb: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """Run a notebook in its own folder and return it with fresh outputs; errors raise.
    `nb`: run these cells in the notebook's place (tests append cells to it)."""
    nb = nbformat.read(path, as_version=4) if nb is None else nb
    client = NotebookClient(
        nb,
        kernel_name="python3",  # jupyter_client starts it with sys.executable
        timeout=TIMEOUT_S,
        allow_errors=False,
        record_timing=False,  # no timestamps in the stored notebook
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env={**os.environ, "PYTHONHASHSEED": "0"})  # the kernel's environment
    return nb


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or notebooks()
    for path in paths:
        start = time.perf_counter()
        nb = execute(path)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"{path.relative_to(ROOT)}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

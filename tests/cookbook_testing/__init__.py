"""Helpers shared by the tests (and scripts/outputs.py), one job per module: see the
docstring of `pages`, which re-exports them, and CONTRIBUTING.md ("How the harness is laid
out"). Importable with only Markdown, pymdown-extensions, PyYAML, pytest and
pytest-codeblocks besides torch, so that they work on a GPU machine too."""

"""Helpers shared by the tests (and scripts/outputs.py), one job per module: see the
docstring of `pages`, which re-exports them, and CONTRIBUTING.md ("How the harness is laid
out"). Importable with only Markdown, pymdown-extensions, PyYAML, pytest and
pytest-codeblocks besides torch, so that they work on a GPU machine too."""

import os as _os
from pathlib import Path as _Path

# DeepSpeed compiles a small C++ op at its first use on the CPU (about two CPU-minutes): build it
# once into the repository's ignored .cache/, not in the user's home and not in every run.
_os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                       str(_Path(__file__).resolve().parents[2] / ".cache" / "torch_extensions"))
# With DeepSpeed installed, transformers imports it, and DeepSpeed prints a warning to stdout
# while it guesses the accelerator; on a CPU-only machine that line would land in the Hugging
# Face page's checked outputs. Naming the accelerator, as the DeepSpeed page does, keeps it quiet.
_os.environ.setdefault("DS_ACCELERATOR", "cpu")

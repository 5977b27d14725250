"""Helpers shared by the tests (and scripts/outputs.py): the pages as the reader sees them
(`pages`), the hardware of this run (`devices`), checkpoints made as if on another device
(`checkpoints`). Importable with only Markdown, pymdown-extensions, PyYAML, pytest and
pytest-codeblocks besides torch, so that they work on a GPU machine too."""

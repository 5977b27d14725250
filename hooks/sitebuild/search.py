"""A smaller search index (every page downloads it on first load).

- Python code, notebook code cells and typeset math stay out of it (`data-search-exclude`):
  readers search prose, headings and quoted error messages (```text blocks stay indexed).
- The index is written as UTF-8 instead of `\\uXXXX` escapes, which tripled Japanese text.
"""

from __future__ import annotations

import json
from pathlib import Path
import re

# Material's search parser matches excluded elements by tag name alone, so an exclusion on an
# element that holds another of the same tag ends at the first inner closing tag: exclude the
# innermost code containers (a notebook cell's `highlight-ipynb` div holds only its <pre>;
# `clipboard-copy-txt` is the copy of its code that the copy button uses).
CODE = re.compile(r'<div class="(?:language-(?:python|py|pycon) highlight|highlight-ipynb[^"]*|clipboard-copy-txt)"')


def exclude_code(content: str) -> str:
    return CODE.sub(lambda m: m[0] + " data-search-exclude", content)


def compact_index(site_dir: str | Path) -> None:
    path = Path(site_dir) / "search" / "search_index.json"
    if path.exists():
        index = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

"""A smaller search index, one per language.

- Python code, notebook code cells and typeset math stay out of it (`data-search-exclude`):
  readers search prose, headings and quoted error messages (```text blocks stay indexed).
- The index is written as UTF-8 instead of `\\uXXXX` escapes, which tripled Japanese text.
- Each language gets its own index (`search/search_index.json` for English,
  `ja/search/search_index.json`): a Japanese page searches the Japanese pages, and an English
  page no longer loads the Japanese segmenter. `docs/assets/js/search.js` picks the file.
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


def split_by_language(site_dir: str | Path, languages: tuple[str, ...] = ("ja",)) -> dict[str, int]:
    """Moves each language's pages out of the site-wide index into `<lang>/search/`.

    Locations stay relative to the site root, where Material resolves them. The English
    index searches with the English pipeline only; the others keep the configured languages
    (a Japanese page quotes English error messages and identifiers). Returns the number of
    entries per index."""
    path = Path(site_dir) / "search" / "search_index.json"
    if not path.exists():
        return {}
    index = json.loads(path.read_text(encoding="utf-8"))
    docs, counts = index["docs"], {}
    for lang in languages:
        own = [d for d in docs if d["location"].startswith(f"{lang}/")]
        out = Path(site_dir) / lang / "search" / "search_index.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**index, "docs": own}, ensure_ascii=False, separators=(",", ":")),
                       encoding="utf-8")
        counts[lang] = len(own)
    rest = [d for d in docs if not any(d["location"].startswith(f"{lang}/") for lang in languages)]
    config = {**index["config"], "lang": ["en"]}
    path.write_text(json.dumps({**index, "config": config, "docs": rest}, ensure_ascii=False,
                               separators=(",", ":")), encoding="utf-8")
    counts["en"] = len(rest)
    return counts

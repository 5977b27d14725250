"""Notebook pages: rendered in every language, with a description and real alt text.

- mkdocs-static-i18n re-creates every file as a plain file, which dropped mkdocs-jupyter's
  notebook type (ultrabug/mkdocs-static-i18n#198): `mark_notebooks_as_pages` makes them
  documentation pages again.
- `<meta name="description">` comes from the notebook's metadata["description"], and output
  images get their alt text from metadata["image_alt"] (one per image, in order), in place of
  nbconvert's "No description has been provided for this image".
"""

from __future__ import annotations

import html
import json
import re

PLACEHOLDER = re.compile(r'alt="No description has been provided for this image"')


def mark_notebooks_as_pages(files) -> None:
    for file in files:
        if file.src_uri.endswith(".ipynb"):
            file.is_documentation_page = lambda: True
            file.is_static_page = lambda: False


def notebook_metadata(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("metadata", {})


def with_alt_text(content: str, alts: list[str]) -> str:
    alts = iter(alts)
    return PLACEHOLDER.sub(lambda m: f'alt="{html.escape(next(alts, ""), quote=True)}"', content)


HEADING = re.compile(r'<h([23])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def toc_entries(content: str) -> list[tuple[int, str, str]]:
    """(level, id, title) of the h2 and h3 headings of a rendered notebook, for its table of
    contents (mkdocs-jupyter sees none: the headings are HTML in Markdown cells)."""
    out = []
    for level, hid, inner in HEADING.findall(content):
        title = html.unescape(re.sub(r"<[^>]+>", "", inner)).replace("¶", "").strip()
        out.append((int(level), hid, title))
    return out


SCROLLABLE = re.compile(r'<div class="(?:highlight-ipynb|jp-RenderedText)[^"]*"(?![^>]*tabindex)')


def focusable_scroll_regions(content: str) -> str:
    """Notebook code and text outputs scroll sideways: make them reachable with the keyboard
    (WCAG: scrollable regions must be focusable)."""
    return SCROLLABLE.sub(lambda m: m[0] + ' tabindex="0"', content)

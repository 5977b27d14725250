"""Notebook pages: rendered in every language, with a description and real alt text.

- mkdocs-static-i18n re-creates every file as a plain file, which dropped mkdocs-jupyter's
  notebook type (ultrabug/mkdocs-static-i18n#198): `mark_notebooks_as_pages` makes them
  documentation pages again.
- `<meta name="description">` comes from the notebook's metadata["description"], and output
  images get their alt text from metadata["image_alt"] (one per image, in order), in place of
  nbconvert's "No description has been provided for this image".
- Under the title, a link to download the notebook of the page's language and, when the
  site knows its GitHub repository, one to open it in Colab.
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


RUN_BOX = {
    "en": ("Run it yourself", "Download the notebook ({name})", "Open in Colab"),
    "ja": ("自分で実行する", "ノートブックをダウンロード（{name}）", "Colab で開く"),
}
H1_END = re.compile(r"</h1>")


def with_run_links(content: str, docs_path: str, colab: str | None = None) -> str:
    """The rendered notebook docs/<docs_path> with, after its title, a link to download it
    (mkdocs-jupyter's include_source serves the .ipynb beside the page, byte for byte) and,
    given its Colab address, a link to open it there; in the notebook's language."""
    name = docs_path.rsplit("/", 1)[-1]
    title, download, open_colab = RUN_BOX["ja" if name.endswith(".ja.ipynb") else "en"]
    code = f"<code>{html.escape(name)}</code>"
    links = [f'<a href="{html.escape(name)}" download>{download.format(name=code)}</a>']
    if colab:
        links.append(f'<a href="{html.escape(colab)}">{open_colab}</a>')
    box = (f'<div class="admonition tip notebook-run"><p class="admonition-title">{title}</p>'
           f'<p>{" · ".join(links)}</p></div>')
    return H1_END.sub(lambda m: m[0] + box, content, count=1)

"""Typeset math at build time with the self-hosted KaTeX, so pages need no math JavaScript.

pymdownx.arithmatex (generic mode) leaves `\\(...\\)` / `\\[...\\]` in `.arithmatex` elements;
notebooks leave `$...$` / `$$...$$` as text in their rendered Markdown cells. Each formula is
rendered by `node hooks/katex_render.js` (one call per page) and KaTeX's HTML takes its place.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import subprocess
from pathlib import Path

from sitebuild.layout import CACHE as CACHE_ROOT
from sitebuild.layout import ROOT, write_cached

KATEX_JS = ROOT / "docs" / "assets" / "katex" / "katex.min.js"
RENDER_JS = ROOT / "hooks" / "katex_render.js"
MATH = re.compile(r'<(span|div) class="arithmatex">\\([(\[])(.*?)\\[)\]]</\1>', re.S)
NOTEBOOK_MARKDOWN = re.compile(
    r'(<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput"[^>]*>)(.*?)(</div>)', re.S)
DOLLARS = re.compile(r"<code>.*?</code>|\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)


class TypesetError(RuntimeError):
    """KaTeX could not render a formula; the message names the page."""


CACHE = CACHE_ROOT / "katex"


def _key(tex: str, display: bool) -> str:
    """A formula's cache key: its TeX, display or inline, and the KaTeX that renders it."""
    return hashlib.sha256(json.dumps([_katex_id(), tex, display]).encode("utf-8")).hexdigest()[:32]


@functools.cache
def _katex_id() -> str:
    return hashlib.sha256(KATEX_JS.read_bytes() + RENDER_JS.read_bytes()).hexdigest()[:16]


def _render(items: list[tuple[str, bool]], where: str, cache: Path | None = CACHE) -> list[str]:
    """KaTeX's HTML for each (TeX, display) item. A formula rendered before comes from the
    cache (a rebuild of an unchanged page starts no node process); the others are rendered by
    one node process."""
    keys = [_key(tex, display) for tex, display in items]
    done = {k: (cache / k).read_text(encoding="utf-8") for k in keys
            if cache is not None and (cache / k).is_file()}
    todo = [(k, item) for k, item in zip(keys, items) if k not in done]
    if todo:
        proc = subprocess.run(["node", str(RENDER_JS), str(KATEX_JS)],
                              input=json.dumps([item for _, item in todo]),
                              capture_output=True, text=True, encoding="utf-8")
        if proc.returncode != 0:
            raise TypesetError(f"KaTeX could not render math on {where}:\n{proc.stderr}")
        for (k, _), out in zip(todo, json.loads(proc.stdout)):
            done[k] = out
            if cache is not None:
                write_cached(cache / k, out)
    return [done[k] for k in keys]


def dollars_to_arithmatex(cell_html: str) -> str:
    """`$x$` / `$$x$$` in a notebook's Markdown cell -> the markup arithmatex gives Markdown pages."""
    def sub(m):
        if m[1] is not None:
            return f'<div class="arithmatex">\\[{m[1]}\\]</div>'
        if m[2] is not None:
            return f'<span class="arithmatex">\\({m[2]}\\)</span>'
        return m[0]  # inline code stays as it is
    return DOLLARS.sub(sub, cell_html)


def typeset(content: str, where: str, notebook: bool = False, formulas: list[str] | None = None) -> str:
    """A page's HTML with every formula typeset by KaTeX (and kept out of the search index);
    KaTeX's HTML of each formula is appended to `formulas` when given (sitebuild.fonts)."""
    if notebook:
        content = NOTEBOOK_MARKDOWN.sub(lambda m: m[1] + dollars_to_arithmatex(m[2]) + m[3], content)
    found = list(MATH.finditer(content))
    if not found:
        return content
    done = _render([(html.unescape(m[3]).strip(), m[2] == "[") for m in found], where)
    if formulas is not None:
        formulas.extend(done)
    rendered = iter(done)
    return MATH.sub(lambda m: f'<{m[1]} class="arithmatex" data-search-exclude>{next(rendered)}</{m[1]}>',
                    content)

"""Typeset math at build time with the self-hosted KaTeX, so pages need no math JavaScript.

pymdownx.arithmatex (generic mode) leaves `\\(...\\)` / `\\[...\\]` in `.arithmatex` elements;
this hook renders each one with `node hooks/katex_render.js` (one call per page) and puts
KaTeX's HTML in its place. A TeX error fails the build, naming the page. Notebook pages keep
their math as `$...$` text: they get KaTeX's script and auto-render instead.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parent.parent
KATEX_JS = ROOT / "docs" / "assets" / "katex" / "katex.min.js"
RENDER_JS = Path(__file__).with_name("katex_render.js")
MATH = re.compile(r'<(span|div) class="arithmatex">\\([(\[])(.*?)\\[)\]]</\1>', re.S)
CLIENT_SCRIPTS = ("assets/katex/katex.min.js", "assets/katex/contrib/auto-render.min.js",
                  "javascripts/katex.js")


def _render(items: list[tuple[str, bool]], where: str) -> list[str]:
    proc = subprocess.run(["node", str(RENDER_JS), str(KATEX_JS)], input=json.dumps(items),
                          capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        raise PluginError(f"KaTeX could not render math on {where}:\n{proc.stderr}")
    return json.loads(proc.stdout)


def on_page_content(content, page, config, files):
    found = list(MATH.finditer(content))
    if not found:
        return content
    rendered = iter(_render([(html.unescape(m[3]).strip(), m[2] == "[") for m in found],
                            page.file.src_uri))
    return MATH.sub(lambda m: f'<{m[1]} class="arithmatex" data-search-exclude>{next(rendered)}</{m[1]}>',
                    content)


def on_post_page(output, page, config):
    """Notebooks: their Markdown math is rendered in the browser."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    tags = "".join(f'<script src="{get_relative_url(src, page.url)}"></script>'
                   for src in CLIENT_SCRIPTS)
    return output.replace("</body>", tags + "</body>", 1)

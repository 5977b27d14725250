"""Notebook pages: rendered in every language, with a description and real alt text.

- mkdocs-static-i18n re-creates every file as a plain file, which dropped mkdocs-jupyter's
  notebook type (ultrabug/mkdocs-static-i18n#198): `mark_notebooks_as_pages` makes them
  documentation pages again.
- `<meta name="description">` comes from the notebook's metadata["description"], and output
  images get their alt text from metadata["image_alt"] (one per image, in order), in place of
  nbconvert's "No description has been provided for this image".
- Notebook pages carry nbconvert's JupyterLab stylesheet inline (570 KB, 86 KB gzip):
  `prune_notebook_css` keeps the rules that can match the page and the custom properties
  something uses (3 KB gzip; the page renders pixel for pixel the same in both schemes).
- Under the title, a link to download the notebook of the page's language and, when the
  site knows its GitHub repository, one to open it in Colab.
- Output images, which nbconvert inlines as base64 `data:` addresses (a plot was 90 KB gzip of
  every first load), become files beside the page that load when the reader scrolls to them
  (`images_as_files`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

from sitebuild.layout import CACHE, lang_of, write_cached

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


STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S)
CLASS_ATTR = re.compile(r'class="([^"]*)"')
CLASS = re.compile(r"\.(-?[_a-zA-Z][-\w]*)")
# `.jupyter-wrapper :root` and the like: a document's root is never inside an element.
NEVER = re.compile(r"\S\s+(?::root|html|body)\b")
VAR_USE = re.compile(r"var\(\s*(--[-\w]+)")
VAR_DEF = re.compile(r"(?<=[{;])\s*(--[-\w]+)\s*:[^;{}]*;?")


def prune_notebook_css(page_html: str, other_css: str = "") -> str:
    """The page with its JupyterLab stylesheet cut to what can apply to it: selectors whose
    classes all occur on the page (the page is static: no script adds Jupyter classes),
    and custom properties that this or any other stylesheet of the page (`other_css`: the
    theme's and the site's files) reads."""
    blocks = [m for m in STYLE.finditer(page_html) if ".jupyter-wrapper" in m[2]]
    if not blocks:
        return page_html
    big = max(blocks, key=lambda m: len(m[2]))
    used = {c for attr in CLASS_ATTR.findall(page_html) for c in attr.split()}
    rest = "".join(m[2] for m in STYLE.finditer(page_html) if m.start() != big.start()) + other_css
    return page_html[:big.start(2)] + _pruned(big[2], used, rest) + page_html[big.end(2):]


PRUNE_CACHE = CACHE / "notebook-css"


def _pruned(big: str, used: set[str], rest: str, cache: Path | None = PRUNE_CACHE) -> str:
    """The pruned stylesheet, from the cache when the same stylesheet was pruned for the same
    classes and the same other stylesheets (every rebuild of an unchanged notebook page)."""
    key = hashlib.sha256("\0".join([big, " ".join(sorted(used)), rest]).encode("utf-8")).hexdigest()[:32]
    if cache is not None and (cache / key).is_file():
        return (cache / key).read_text(encoding="utf-8")
    import tinycss2

    css = "".join(_prune(tinycss2.parse_stylesheet(big, skip_comments=True,
                                                   skip_whitespace=True), used))
    while True:  # a property read only by a removed declaration goes too
        read = set(VAR_USE.findall(css + rest))
        smaller = VAR_DEF.sub(lambda m: m[0] if m[1] in read else "", css)
        if smaller == css:
            break
        css = smaller
    if cache is not None:
        write_cached(cache / key, css)
    return css


def _prune(rules, used: set[str]) -> list[str]:
    import tinycss2

    out = []
    for rule in rules:
        if rule.type == "qualified-rule":
            keep = [s for s in _selectors(tinycss2.serialize(rule.prelude))
                    if set(CLASS.findall(re.sub(r":not\([^)]*\)", "", s))) <= used
                    and not NEVER.search(s)]
            if keep:
                out.append(",".join(keep) + "{" + tinycss2.serialize(rule.content) + "}")
        elif rule.type == "at-rule" and rule.lower_at_keyword in ("media", "supports") and rule.content:
            inner = _prune(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                                    skip_whitespace=True), used)
            if inner:
                out.append(f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}{{{''.join(inner)}}}")
        elif rule.type == "at-rule":
            out.append(tinycss2.serialize([rule]))
    return out


def _selectors(prelude: str) -> list[str]:
    """A selector list split at its top-level commas (not those inside :is(...) or [...])."""
    parts, depth, current = [], 0, ""
    for ch in prelude:
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return parts + [current.strip()]
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
    title, download, open_colab = RUN_BOX[lang_of(name)]
    code = f"<code>{html.escape(name)}</code>"
    links = [f'<a href="{html.escape(name)}" download>{download.format(name=code)}</a>']
    if colab:
        links.append(f'<a href="{html.escape(colab)}">{open_colab}</a>')
    box = (f'<div class="admonition tip notebook-run"><p class="admonition-title">{title}</p>'
           f'<p>{" · ".join(links)}</p></div>')
    return H1_END.sub(lambda m: m[0] + box, content, count=1)


DATA_IMAGE = re.compile(r'<img\b([^>]*?)\s*\bsrc="data:image/(png|jpeg);base64,([A-Za-z0-9+/=\s]+)"([^>]*?)\s*/?>')


def images_as_files(content: str, out_dir: Path) -> str:
    """A rendered notebook whose inline output images are files in out_dir (the page's folder
    in the built site), named by their content, with `loading="lazy"` and their size in
    pixels (so that the page keeps its layout while the image loads)."""
    def sub(m):
        data = base64.b64decode(m[3])
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{'png' if m[2] == 'png' else 'jpg'}"
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        size = ""
        if data[:8] == b"\x89PNG\r\n\x1a\n":  # IHDR: width and height, big-endian
            size = f' width="{int.from_bytes(data[16:20], "big")}" height="{int.from_bytes(data[20:24], "big")}"'
        return f'<img{m[1]} src="{name}"{size} loading="lazy" decoding="async"{m[4]}/>'
    return DATA_IMAGE.sub(sub, content)

"""The strict build, and what it must produce for every page in both languages."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from cookbook_testing.pages import DOCS, ROOT, has_math, lang_of, markdown_pages, notebooks, site_path
from sitebuild.layout import page_key

from sitebuild import downloads as downloads_hook  # noqa: E402

pytestmark = pytest.mark.xdist_group("site")  # one built site per run

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _built(site, src):
    return site / site_path(src) / "index.html"


def test_strict_build_succeeds(built_site):
    assert (built_site / "index.html").exists()
    assert (built_site / "ja" / "index.html").exists()


def test_every_page_is_built_with_its_language(built_site):
    for src in markdown_pages() + notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        lang = lang_of(src)
        assert f'<html lang="{lang}"' in html, src
        if lang == "ja":
            assert JAPANESE.search(html), src


def test_notebooks_are_rendered(built_site):
    """Guards hooks/i18n_notebooks.py: cells rendered as HTML, not the notebook's JSON."""
    assert notebooks(), "no notebook to check"
    for src in notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        assert "jp-Cell" in html and "jp-CodeCell" in html, src
        assert '"cell_type"' not in html, f"{src} was copied as raw JSON"
        first_code = next(c for c in json.loads(src.read_text(encoding="utf-8"))["cells"]
                          if c["cell_type"] == "code")
        first_line = "".join(first_code["source"]).split("\n")[0].split()[0]
        assert first_line in html, src


def test_math_is_typeset_at_build_time_and_nothing_is_fetched_from_outside(built_site):
    """hooks/katex.py: pages and notebooks carry KaTeX's HTML, no math script, no raw TeX."""
    pages = [p for p in markdown_pages() + notebooks() if has_math(p.read_text(encoding="utf-8"))]
    assert pages, "no page with math"
    for src in pages:
        html = _built(built_site, src).read_text(encoding="utf-8")
        assert 'class="katex"' in html and "katex-error" not in html, src
        raw = re.findall(r'class="arithmatex"[^>]*>(?!<span class="katex[\w-]*")', html)
        assert raw == [], f"{src}: formulas left as raw TeX"
        assert "katex.min.js" not in html, src
    for src in notebooks():
        markdown = re.findall(r'jp-MarkdownOutput"[^>]*>(.*?)</div>',
                              _built(built_site, src).read_text(encoding="utf-8"), re.S)
        assert markdown and not any(re.search(r"\$[^$<]+\$", cell) for cell in markdown), src
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert [u for u in external if not u.startswith("http://127.0.0.1")] == [], page


def test_code_blocks_have_language_class_and_copy_button(built_site):
    html = _built(built_site, DOCS / "recipes" / "save-and-resume.md").read_text(encoding="utf-8")
    assert 'class="language-python highlight"' in html
    assert "content.code.copy" in html
    # snippet markers never reach the reader
    assert "--8&lt;--" not in html and "--8<--" not in html


def _front_matter_description(src):
    text = src.read_text(encoding="utf-8")
    if src.suffix == ".md":
        m = re.match(r"---\n(.*?)\n---\n", text, re.S)
        return m and re.search(r"^description:", m.group(1), re.M)
    meta = json.loads(text).get("metadata", {})
    return meta.get("description")


def test_every_page_has_a_title_and_its_own_description(built_site):
    site_description = re.search(r'<meta name="description" content="([^"]*)"',
                                  (built_site / "index.html").read_text(encoding="utf-8"))[1]
    for src in markdown_pages() + notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        assert re.search(r"<title>[^<]+</title>", html), src
        description = re.search(r'<meta name="description" content="([^"]+)"', html)
        assert description, src
        if src.name not in ("index.md", "index.ja.md"):
            assert _front_matter_description(src), f"{src}: no description in its front matter"
            assert description[1] != site_description, src


def test_images_have_alt_text(built_site):
    for page in built_site.rglob("*.html"):
        for img in re.findall(r"<img\b[^>]*>", page.read_text(encoding="utf-8")):
            assert re.search(r'\balt="[^"]+"', img), f"{page}: {img[:120]}"
            assert "No description has been provided" not in img, f"{page}: set image_alt"


def test_pages_link_their_translation_with_hreflang(built_site):
    for src in markdown_pages() + notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        alternates = dict(re.findall(r'<link rel="alternate" href="([^"]+)" hreflang="(\w+)"', html))
        assert set(alternates.values()) >= {"en", "ja"}, src


def test_sitemap_lists_both_languages(built_site):
    sitemap = (built_site / "sitemap.xml").read_text(encoding="utf-8")
    assert "/ja/recipes/save-and-resume/" in sitemap
    assert "/recipes/save-and-resume/" in sitemap


def test_404_page_speaks_both_languages(built_site):
    html = (built_site / "404.html").read_text(encoding="utf-8")
    assert 'lang="en"' in html and 'lang="ja"' in html and JAPANESE.search(html)


def test_every_page_offers_its_snippet_files_byte_for_byte(built_site):
    """The box near the top links every snippet file the page embeds; each download is the
    file the tests ran, unchanged."""
    from cookbook_testing.pages import SNIPPETS, includes
    for src in markdown_pages():
        files = sorted({inc.split(":")[0] for inc in includes(src.read_text(encoding="utf-8"))
                        if inc.split(":")[0].endswith(".py")})
        files += downloads_hook.imported_snippets(files)
        html = _built(built_site, src).read_text(encoding="utf-8")
        title = "レシピ全体を 1 つのスクリプトで" if lang_of(src) == "ja" else "The whole recipe as one script"
        assert (title in html) == bool(files), src
        for f in files:
            assert re.search(rf'href="(\.\./)+downloads/{re.escape(f)}"', html), (src, f)
            assert (built_site / "downloads" / f).read_bytes() == (SNIPPETS / f).read_bytes()


def test_each_language_edits_its_own_file_and_notebooks_open_in_colab(built_site):
    out = built_site
    edit = "https://github.com/example/cookbook/edit/main/docs/recipes/"
    en = (out / "recipes" / "save-and-resume" / "index.html").read_text(encoding="utf-8")
    ja = (out / "ja" / "recipes" / "save-and-resume" / "index.html").read_text(encoding="utf-8")
    assert f'href="{edit}save-and-resume.md"' in en and f'href="{edit}save-and-resume.ja.md"' in ja
    report = 'href="https://github.com/example/cookbook/issues/new"'
    assert report in en and "Report it" in en
    assert report in ja and "Issue で報告" in ja
    colab = "https://colab.research.google.com/github/example/cookbook/blob/main/docs/notebooks/"
    for src in notebooks():
        html = (out / site_path(src) / "index.html").read_text(encoding="utf-8")
        label = "Colab で開く" if lang_of(src) == "ja" else "Open in Colab"
        assert f'<a href="{colab}{src.name}">{label}</a>' in html, src.name


def test_notebook_pages_have_a_table_of_contents(built_site):
    for src in notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        toc = html.split('data-md-component="toc"', 1)[1]
        ids = re.findall(r'<h2 id="([^"]+)"', html)
        assert ids and all(f'href="#{i}" class="md-nav__link"' in toc for i in ids), src


def test_code_stays_out_of_the_search_index(built_site):
    for lang in ("en", "ja"):
        index = json.loads((built_site / "search" / f"{lang}.json").read_text(encoding="utf-8"))
        assert [d["location"] for d in index["docs"] if "import torch" in d["text"]] == []
        assert {d["location"].startswith("ja/") for d in index["docs"]} == {lang == "ja"}
    # What Material's bundle loads on every page: the configuration, no page.
    stub = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert stub["docs"] == [] and stub["config"]["separator"]


def test_every_page_with_code_says_what_it_was_last_verified_with(built_site):
    """From the records that test runs write (outputs/verified/), in the page's language."""
    cpu = json.loads((ROOT / "outputs" / "verified" / "cpu.json").read_text(encoding="utf-8"))
    for src in markdown_pages() + notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        title = "最終確認" if lang_of(src) == "ja" else "Last verified"
        has_code = src.suffix == ".ipynb" or '.py:' in src.read_text(encoding="utf-8")
        assert (f'admonition-title">{title}' in html) == has_code, src
        page = page_key(src)
        if has_code:
            record = cpu[page]  # `make test` verified every page with code
            assert f"PyTorch {record['torch']}" in html and record["date"] in html, src


def _english_ui_strings() -> list[str]:
    """What the English site shows outside the text of its pages: the site name, the
    colour toggle's tooltips, the checkpoint-cost tables' headers, captions and labels
    (bench/bench_render.py), Material's own labels. Code in them stays code and is dropped."""
    import html as html_lib

    import yaml
    import bench_render

    class _Loader(yaml.SafeLoader):
        pass
    _Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # !ENV, !!python
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)
    strings = [config["site_name"], *(p["toggle"]["name"] for p in config["theme"]["palette"])]
    words = bench_render.TABLE_WORDS["en"]
    for value in words.values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        strings += [piece for v in items for piece in re.split(r"\{[^}]*\}|: ", v)]
    strings += ["Copy to clipboard", "Back to top", "Table of contents", "Type to start searching"]
    out = set()
    for s in strings:
        s = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)", "", s).strip(" ·,:")
        if re.search(r"[A-Za-z]{3,}", s) and not re.fullmatch(r"[\w.]+", s):  # words, not a name
            out.add(html_lib.escape(s, quote=False))
    return sorted(out)


def test_no_english_ui_string_is_left_on_a_japanese_page(built_site):
    """A Japanese page shows the Japanese site name in its header and tab, Japanese toggle
    tooltips and Japanese table headers, captions and labels: none of the English site's
    UI strings is left, outside code."""
    english = _english_ui_strings()
    assert {"Dark mode", "Resume Training Cookbook", "save ÷ raw", "median of"} <= set(english)
    left = {}
    for src in [p for p in markdown_pages() + notebooks() if lang_of(p) == "ja"]:
        page = _built(built_site, src).read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", page, re.S)[1]
        assert title.endswith("学習再開レシピ集"), (src, title)
        assert re.search(r'class="md-header__topic"[^>]*>\s*<span class="md-ellipsis">\s*学習再開レシピ集', page), src
        shown = re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", page, flags=re.S)
        found = [s for s in english if s in shown]
        if found:
            left[src.relative_to(DOCS).as_posix()] = found
    assert left == {}


def test_only_pages_with_math_load_katex_and_code_lines_carry_no_anchors(built_site):
    """What a page without math does not download: KaTeX's stylesheet; what no page carries:
    an empty link on every line of code (pymdownx.highlight's anchor_linenums)."""
    pages = [p for p in built_site.rglob("index.html") if "assets" not in p.parts]
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert ("katex.min.css" in html) == ('class="katex"' in html), page
        assert "__codelineno" not in html, page


class _KatexText(HTMLParser):
    """The characters of the text inside KaTeX's drawn formulas (`.katex-html`), what the
    fonts must hold: a tokenizer that counts open elements (four times as fast as a soup)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}  # HTML elements that have no end tag

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.chars = 0, set()

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif "katex-html" in (dict(attrs).get("class") or "").split():
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.chars |= {ord(c) for c in data}


def test_katex_fonts_hold_every_glyph_the_formulas_draw_and_little_else(built_site):
    """sitebuild.fonts: each font of the site is the npm package's, or that font cut to the
    characters the formulas draw; a cut font keeps every one of them that the font has."""
    import io

    from fontTools.ttLib import TTFont

    formulas = _KatexText()
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        if "katex-html" in html:
            formulas.feed(html[html.index("<article"):html.index("</article>") + 10])
    drawn = formulas.chars
    assert drawn
    source = ROOT / "docs" / "assets" / "katex" / "fonts"
    cut = []
    for font in sorted(source.glob("*.woff2")):
        built = (built_site / "assets" / "katex" / "fonts" / font.name).read_bytes()
        if built == font.read_bytes():
            continue
        cut.append(font.name)
        has = set(TTFont(io.BytesIO(font.read_bytes())).getBestCmap())
        kept = set(TTFont(io.BytesIO(built)).getBestCmap())
        assert drawn & has <= kept, f"{font.name} lost {[chr(c) for c in drawn & has - kept]}"
        assert len(built) < len(font.read_bytes()), font.name
        if font.name in ("KaTeX_Main-Regular.woff2", "KaTeX_Math-Italic.woff2"):
            assert len(built) < len(font.read_bytes()) / 2, font.name
    assert {"KaTeX_Main-Regular.woff2", "KaTeX_Math-Italic.woff2"} <= set(cut)


def test_notebook_images_are_files_that_load_when_scrolled_to(built_site):
    """Each output image of a notebook is a file beside its page, byte for byte the image the
    notebook holds, with loading="lazy" and its size; no image is inlined in the page."""
    import base64

    for src in notebooks():
        html = _built(built_site, src).read_text(encoding="utf-8")
        assert not re.search(r'<img\b[^>]*\bsrc="data:', html), src
        stored = [base64.b64decode(out["data"]["image/png"])
                  for cell in json.loads(src.read_text(encoding="utf-8"))["cells"]
                  for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        imgs = re.findall(r'<img\b[^>]*\bsrc="([0-9a-f]{16}\.png)"[^>]*>', html)
        assert stored and len(imgs) == len(stored), src
        for name, png in zip(imgs, stored):
            assert (built_site / site_path(src) / name).read_bytes() == png, src
        for img in re.findall(r'<img\b[^>]*\.png"[^>]*>', html):
            assert 'loading="lazy"' in img and re.search(r'width="\d+" height="\d+"', img), img[:200]


def test_materials_stylesheet_is_cut_to_what_the_site_uses(built_site):
    """hooks/theme_css.py: the stylesheet every page loads keeps what the pages and Material's
    scripts use (search results, code buttons, admonitions) and loses the rest (blog posts,
    grids, cookie consent, banners, right-to-left text); the pages render as with the whole
    (compared pixel for pixel when the cut was introduced)."""
    from pathlib import Path

    import material

    theme = next((Path(material.__file__).parent / "templates").glob("assets/stylesheets/main.*.min.css"))
    built = (built_site / "assets" / "stylesheets" / theme.name).read_text(encoding="utf-8")
    assert len(built) < 0.75 * len(theme.read_text(encoding="utf-8"))
    for kept in (".md-search-result__article", ".md-code__button", ".md-typeset .admonition",
                 ".md-select__link", ".md-typeset__scrollwrap"):
        assert kept in built, kept
    for gone in (".md-post__", "[dir=rtl]", ".md-typeset .grid", ".md-consent", ".md-banner"):
        assert gone not in built, gone

"""The built site in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import re

import pytest

from cookbook_testing.pages import DOCS, ROOT, has_math, lang_of, notebooks, site_path

pytestmark = [pytest.mark.xdist_group("site"), pytest.mark.slow]  # one built site per run

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def math_pages() -> list[str]:
    """Pages whose source has math, as site paths (English and Japanese)."""
    out = []
    for src in sorted([*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]):
        if has_math(src.read_text(encoding="utf-8")):
            out.append(site_path(src))
    return out


def test_japanese_page_has_lang_and_japanese_text(tab, site_url):
    tab.page.goto(site_url + "ja/recipes/save-and-resume/")
    assert tab.page.get_attribute("html", "lang") == "ja"
    assert JAPANESE.search(tab.page.inner_text("article"))
    # The verified note ends the page, in its language, with the GPU it ran on.
    note = tab.page.locator("article .admonition.info").last
    assert note.locator(".admonition-title").inner_text() == "最終確認"
    assert "NVIDIA" in note.inner_text() and note.is_visible()


def test_notebook_pages_download_their_own_notebook(tab, site_url):
    for src in notebooks():
        tab.page.goto(site_url + site_path(src), wait_until="domcontentloaded")
        link = tab.page.locator(f'.notebook-run a[download][href="{src.name}"]')
        assert link.count() == 1, src.name
        if lang_of(src) == "ja":
            assert JAPANESE.search(link.inner_text())
        response = tab.page.request.get(link.evaluate("a => a.href"))
        assert response.ok and response.body() == src.read_bytes(), src.name


def test_language_switch_keeps_the_page(tab, site_url):
    p = tab.page
    p.goto(site_url + "recipes/save-and-resume/")
    p.locator(".md-select__link[hreflang=ja]").first.evaluate("a => a.click()")
    p.wait_for_url(site_url + "ja/recipes/save-and-resume/")
    assert p.get_attribute("html", "lang") == "ja"
    p.locator(".md-select__link[hreflang=en]").first.evaluate("a => a.click()")
    p.wait_for_url(site_url + "recipes/save-and-resume/")
    assert p.get_attribute("html", "lang") == "en"


def test_formulas_are_rendered(tab, site_url):
    """In the browser, with the self-hosted CSS and fonts: one page per language (the build
    test checks every page's HTML)."""
    pages = math_pages()
    assert pages, "no page with math to check"
    for path in [next(p for p in pages if not p.startswith("ja/")), next(p for p in pages if p.startswith("ja/"))]:
        tab.page.goto(site_url + path)
        tab.page.wait_for_selector(".arithmatex .katex")
        assert tab.page.locator(".katex-error").count() == 0, path
        raw = tab.page.evaluate(
            "[...document.querySelectorAll('.arithmatex')].filter(e => !e.querySelector('.katex')).length")
        assert raw == 0, f"{path}: formulas left as raw TeX"


def test_cut_katex_fonts_draw_every_formula_as_the_full_fonts_do(tab, site_url):
    """The site's KaTeX fonts hold only the glyphs its formulas draw (sitebuild.fonts): every
    formula has the same size and place as with the npm package's fonts, and no font face the
    page asks for fails to load."""
    full = ROOT / "docs" / "assets" / "katex" / "fonts"
    boxes = ("[...document.querySelectorAll('.katex-html')].map(e => {"
             " const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })")
    faces = "[...document.fonts].filter(f => f.family.startsWith('KaTeX')).map(f => f.status)"
    # The page with the most formulas; the build test checks the glyphs of every page.
    for path in [next(p for p in math_pages() if p == "concepts/adam/")]:
        seen = []
        for fonts in ("cut", "full"):
            if fonts == "full":
                tab.page.route("**/assets/katex/fonts/*.woff2", lambda route: route.fulfill(
                    body=(full / route.request.url.rsplit("/", 1)[1]).read_bytes(),
                    content_type="font/woff2"))
            tab.page.goto(site_url + path)
            tab.page.evaluate("document.fonts.ready.then(() => true)")
            assert "error" not in tab.page.evaluate(faces), path
            seen.append(tab.page.evaluate(boxes))
        tab.page.unroute("**/assets/katex/fonts/*.woff2")
        assert seen[0] and seen[0] == seen[1], path


def test_notebook_plots_load_when_the_reader_scrolls_to_them(tab, site_url):
    # One notebook page (the build test checks every notebook's image files).
    for src in notebooks()[:1]:
        tab.page.goto(site_url + site_path(src))
        tab.page.wait_for_load_state("networkidle")
        plot = tab.page.locator("article img[loading=lazy]").first
        assert plot.evaluate("i => i.naturalWidth") == 0, "loaded before the reader scrolled"
        plot.scroll_into_view_if_needed()
        tab.page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=plot.element_handle())
        box = plot.bounding_box()
        assert box and box["width"] > 300, src.name

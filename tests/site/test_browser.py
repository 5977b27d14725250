"""The built site in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import re

import pytest

from cookbook_testing.pages import DOCS, has_math, lang_of, notebooks, site_path

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

"""The built site in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from cookbook_testing.pages import DOCS, lang_of, notebooks, site_path

pytestmark = pytest.mark.xdist_group("site")  # one built site per run

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class Watched:
    """A page that records every request and every JavaScript error."""

    def __init__(self, browser):
        self.page = browser.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.failed: list[str] = []
        self.page.on("console", self._console)
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(r.url))

    def _console(self, message):
        # A failed load is logged here too; it is checked from the response itself below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def check(self):
        hosts = {urlparse(u).hostname for u in self.requests if not u.startswith("data:")}
        assert hosts <= {"127.0.0.1"}, f"requests left 127.0.0.1: {hosts}"
        assert self.errors == []
        # Material probes "<alternate>/sitemap.xml" for every hreflang alternate to map pages
        # across languages; the i18n plugin's alternates are the pages themselves, so that probe
        # 404s and Material uses the alternate links directly. Any other failed load fails.
        assert [u for u in self.failed if not u.endswith("/sitemap.xml")] == []


@pytest.fixture
def tab(browser):
    w = Watched(browser)
    yield w
    w.check()
    w.page.close()


def math_pages() -> list[str]:
    """Pages whose source has math, as site paths (English and Japanese)."""
    out = []
    for src in sorted([*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]):
        text = src.read_text(encoding="utf-8")
        if re.search(r"\$\$|(?<![\\`])\$[^$\s`][^$\n]*\$", text):
            out.append(site_path(src))
    return out


def test_japanese_page_has_lang_and_japanese_text(tab, site_url):
    tab.page.goto(site_url + "ja/recipes/save-and-resume/")
    assert tab.page.get_attribute("html", "lang") == "ja"
    assert JAPANESE.search(tab.page.inner_text("article"))


def test_notebook_pages_download_their_own_notebook_and_no_colab_without_a_repository(
        tab, site_url):
    for src in notebooks():
        tab.page.goto(site_url + site_path(src), wait_until="domcontentloaded")
        link = tab.page.locator(f'.notebook-run a[download][href="{src.name}"]')
        assert link.count() == 1, src.name
        if lang_of(src) == "ja":
            assert JAPANESE.search(link.inner_text())
        response = tab.page.request.get(link.evaluate("a => a.href"))
        assert response.ok and response.body() == src.read_bytes(), src.name
        assert tab.page.locator('a[href*="colab"]').count() == 0, src.name


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
    pages = math_pages()
    assert pages, "no page with math to check"
    for path in pages:
        tab.page.goto(site_url + path)
        tab.page.wait_for_selector(".arithmatex .katex")
        assert tab.page.locator(".katex-error").count() == 0, path
        raw = tab.page.evaluate(
            "[...document.querySelectorAll('.arithmatex')].filter(e => !e.querySelector('.katex')).length")
        assert raw == 0, f"{path}: formulas left as raw TeX"


def test_japanese_search_finds_a_japanese_page(tab, site_url):
    p = tab.page
    p.goto(site_url + "ja/")
    p.locator("label.md-search__icon, .md-search__input").first.click()
    p.fill(".md-search__input", "オプティマイザ")
    p.press(".md-search__input", "End")  # fill() alone does not trigger Material's search
    p.wait_for_selector(".md-search-result__item", timeout=15000)
    links = p.eval_on_selector_all(".md-search-result__item a", "as => as.map(a => a.href)")
    assert any("/ja/" in href for href in links), links


# A fragment of each quoted error message -> the anchor of its section.
MESSAGES = {
    "Expected all tensors to be on the same device": "device-mismatch",
    "Attempting to deserialize object on a CUDA device": "cuda-checkpoint-on-cpu",
    "Weights only load failed": "weights-only",
    "different number of parameter groups": "param-group-count",
    "failed finding central directory": "truncated-checkpoint",
}


@pytest.mark.parametrize("lang", ["", "ja/"])
def test_searching_an_error_message_finds_its_section(tab, site_url, lang):
    p = tab.page
    p.goto(site_url + lang)
    for fragment, anchor in MESSAGES.items():
        p.locator("label.md-search__icon, .md-search__input").first.click()
        p.fill(".md-search__input", fragment)
        p.press(".md-search__input", "End")
        want = f"{site_url}{lang}troubleshooting/errors/#{anchor}"
        p.wait_for_function(
            "want => [...document.querySelectorAll('.md-search-result__item a')]"
            ".some(a => { const u = new URL(a.href); u.search = ''; return u.href === want; })",
            arg=want, timeout=15000)
        p.keyboard.press("Escape")

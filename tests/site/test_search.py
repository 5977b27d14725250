"""Search as readers use it (docs/assets/javascripts/cookbook/search.js, hooks/sitebuild/search.py):
every page found by the queries its readers type (tests/site/search_queries.yml), Japanese
typed with an input method or pasted, error messages, identifiers in any case, one index per
language, loaded on first use. One browser, one tab and one index load per language."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cookbook_testing.pages import DOCS, lang_of, markdown_pages, notebooks, site_path

pytestmark = [pytest.mark.xdist_group("site"), pytest.mark.slow]  # one built site per run

QUERIES_FILE = Path(__file__).with_name("search_queries.yml")
QUERIES: dict[str, dict[str, list[str]]] = yaml.safe_load(QUERIES_FILE.read_text(encoding="utf-8"))
LANGUAGES = {"en": "", "ja": "ja/"}
TOP = 3  # a page must be among the first TOP results for each of its queries

# Phrases as Japanese is written, without spaces, in the forms readers write them (the pages
# often use another inflection: 跳ね上がり, 保存し, 読み込み), and a page each must find.
PHRASES = {
    "学習の再開": "recipes/save-and-resume/",
    "学習を再開": "recipes/save-and-resume/",
    "オプティマイザの状態": "recipes/save-and-resume/",
    "状態の保存": "scale/distributed/",
    "保存と再開": "recipes/save-and-resume/",
    "学習率スケジューラ": "recipes/save-and-resume/",
    "乱数生成器の状態": "recipes/exact-resume/",
    "混合精度": "scale/amp-compile/",
    "分散学習": "scale/distributed/",
    "途中で切れたファイル": "recipes/safe-checkpoints/",
    "中断": "recipes/exact-resume/",
    "学習率": "recipes/save-and-resume/",
    "損失が跳ね上がる": "recipes/save-and-resume/",
    "重みだけを戻した": "notebooks/forgotten-optimizer-state/",
    "チェックポイントを読み込んだ": "recipes/save-and-resume/",
}

# Each error message the errors page quotes in a heading -> its section.
MESSAGES = {
    "Expected all tensors to be on the same device": "device-mismatch",
    "expected dtype float for `end` but got dtype double": "dtype-mismatch",
    "Attempting to deserialize object on a CUDA device": "cuda-checkpoint-on-cpu",
    "Attempting to deserialize object on CUDA device 1": "cuda-device-count",
    "Weights only load failed": "weights-only",
    "Unsupported global: GLOBAL numpy._core.multiarray._reconstruct": "numpy-array",
    "Unsupported global: GLOBAL numpy._core.multiarray.scalar": "numpy-scalar",
    "Unsupported global: GLOBAL argparse.Namespace": "other-objects",
    "loaded state dict contains a parameter group that doesn't match the size of optimizer's group": "param-group-size",
    "loaded state dict has a different number of parameter groups": "param-group-count",
    "The size of tensor a must match the size of tensor b": "param-order",
    'Missing key(s) in state_dict, Unexpected key(s): "module."': "key-prefix",
    'Unexpected key(s) in state_dict: "_orig_mod."': "orig-mod",
    "If capturable=True, params and state_steps must be on supported devices": "capturable",
    "PytorchStreamReader failed reading zip archive: failed finding central directory": "truncated-checkpoint",
}

# Identifiers as the pages write them and as readers type them, in lower case.
IDENTIFIERS = {"UnpicklingError": "troubleshooting/errors/", "unpicklingerror": "troubleshooting/errors/",
               "GradScaler": "scale/amp-compile/", "gradscaler": "scale/amp-compile/",
               "onecyclelr": "changes/schedulers/", "reducelronplateau": "changes/schedulers/",
               "param_groups": "troubleshooting/errors/", "load_state_dict": "changes/model/",
               "scheduler.pt": None}

RESULTS = ".md-search-result__item"
RESULT_LINKS = "as => as.map(a => { const u = new URL(a.href); u.search = ''; return u.href; })"
# The page of each result, best first (a result's first link is its page or its best section).
RESULT_PAGES = ("(items, n) => items.slice(0, n).map(li => {"
                " const u = new URL(li.querySelector('a').href); u.search = ''; u.hash = '';"
                " return u.href; })")
# Each query in turn: clear the box, wait for the old results to go, insert the text as a
# paste does, wait for results; the pages of the first n of them ([] after 15 s without).
PASTE_EACH = f"""async ([queries, n]) => {{
  const input = document.querySelector('.md-search__input');
  const count = () => document.querySelectorAll('{RESULTS}').length;
  const until = (done, ms) => new Promise(resolve => {{
    const start = performance.now();
    const poll = () => done() || performance.now() - start > ms ? resolve(done())
                                                                 : requestAnimationFrame(poll);
    poll();
  }});
  const found = [];
  for (const query of queries) {{
    input.focus();
    input.select();
    document.execCommand('delete');
    await until(() => count() === 0, 15000);
    document.execCommand('insertText', false, query);
    found.push(await until(() => count() > 0, 15000)
      ? ({RESULT_PAGES})([...document.querySelectorAll('{RESULTS}')], n) : []);
  }}
  return found;
}}"""
# The pages of the first n results, once there are results.
FIRST_PAGES = (f"n => {{ const items = [...document.querySelectorAll('{RESULTS}')];"
               f" return items.length > 0 && ({RESULT_PAGES})(items, n); }}")
NO_RESULT = f"() => document.querySelectorAll('{RESULTS}').length === 0"


def page_key(src: Path) -> str:
    """docs/recipes/x.ja.md -> recipes/x: a page's key in search_queries.yml."""
    return site_path(src).removeprefix("ja/").rstrip("/") or "index"


class Search:
    """The search box of one page, driven as a reader's keyboard, input method or mouse does."""

    def __init__(self, tab, url):
        self.page = tab.page
        self.tab = tab
        self.page.goto(url)
        self.cdp = self.page.context.new_cdp_session(self.page)
        self.requested_before_use = list(tab.requests)

    def _open(self):
        self.page.locator("label.md-search__icon, .md-search__input").first.click()
        self.page.fill(".md-search__input", "")

    def type_with_input_method(self, text: str):
        """Composition (the converted text growing), then commit with Enter, as Chrome reports
        an IME: key events carry "Process" until the commit's key release."""
        self._open()
        for i in sorted({max(1, len(text) // 2), len(text)}):  # the conversion, in two steps
            self.cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Process",
                                                     "windowsVirtualKeyCode": 229})
            self.cdp.send("Input.imeSetComposition", {"text": text[:i], "selectionStart": i,
                                                      "selectionEnd": i})
            self.cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Process",
                                                     "windowsVirtualKeyCode": 229})
        self.cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Process",
                                                 "windowsVirtualKeyCode": 229})
        self.cdp.send("Input.insertText", {"text": text})  # commits the composition
        self.cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter",
                                                 "windowsVirtualKeyCode": 13})

    def paste(self, text: str):
        """Text that arrives with no key event at all, as a paste from the context menu."""
        self._open()
        self.cdp.send("Input.insertText", {"text": text})

    def results_for(self, text: str) -> list[str]:
        self.page.wait_for_function(
            "q => document.querySelector('.md-search__input').value === q"
            f" && document.querySelectorAll('{RESULTS}').length > 0", arg=text, timeout=15000)
        return self.page.eval_on_selector_all(f"{RESULTS} a", RESULT_LINKS)

    def finds(self, text: str, want: str) -> list[str]:
        try:
            self.page.wait_for_function(
                f"want => [...document.querySelectorAll('{RESULTS} a')]"
                ".some(a => { const u = new URL(a.href); u.search = ''; return u.href.startsWith(want); })",
                arg=want, timeout=15000)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: say what came instead
            shown = self.page.eval_on_selector_all(f"{RESULTS} a", RESULT_LINKS)
            raise AssertionError(f"{text!r}: no result under {want} among {shown}") from None
        return self.results_for(text)

    def top_pages(self, text: str, n: int = TOP) -> list[str]:
        """The pages of the first n results for a pasted query ([] if none came)."""
        if not self.page.is_visible(".md-search__input"):
            self._open()
        self.page.fill(".md-search__input", "")
        self.page.wait_for_function(NO_RESULT, timeout=15000)  # nothing left from before
        self.cdp.send("Input.insertText", {"text": text})
        try:
            return self.page.wait_for_function(FIRST_PAGES, arg=n, timeout=15000).json_value()
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: no result at all
            return []


    def top_pages_of(self, queries: list[str], n: int = TOP) -> list[list[str]]:
        """top_pages for many queries in one call into the page, each entered as a paste is
        (an `input` event with no key event); [] for a query that found nothing."""
        if not self.page.is_visible(".md-search__input"):
            self._open()
        return self.page.evaluate(PASTE_EACH, [queries, n])


@pytest.fixture(scope="module")
def search(module_tab, site_url):
    """One tab per language, opened on the language's home page, kept for the module."""
    opened: dict[str, Search] = {}

    def on(lang: str) -> Search:
        if lang not in opened:
            opened[lang] = Search(module_tab(), site_url + LANGUAGES[lang])
        return opened[lang]

    return on


def test_every_page_has_queries_in_both_languages():
    pages = {page_key(src) for src in markdown_pages() + notebooks() if lang_of(src) == "en"}
    assert pages, DOCS
    missing = sorted(p for p in pages if not all(QUERIES.get(p, {}).get(lang) for lang in LANGUAGES))
    assert not missing, (f"add the queries readers would type for these pages, in English and "
                         f"Japanese, to {QUERIES_FILE.relative_to(DOCS.parent)}: {missing}")
    assert sorted(set(QUERIES) - pages) == [], f"{QUERIES_FILE.name} names pages that do not exist"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_page_is_among_the_first_results_for_its_readers_queries(search, site_url, lang):
    asked = [(page, query) for page, queries in QUERIES.items() for query in queries[lang]]
    misses = []
    for (page, query), got in zip(asked, search(lang).top_pages_of([q for _, q in asked])):
        want = site_url + LANGUAGES[lang] + ("" if page == "index" else page + "/")
        if want not in got:
            misses.append(f"{query!r}: {want.removeprefix(site_url)} not in "
                          f"{[u.removeprefix(site_url) for u in got]}")
    assert not misses, f"{len(misses)} queries miss their page in the first {TOP}:\n" + "\n".join(misses)


def test_the_index_loads_on_first_use_and_each_language_has_its_own(search, site_url):
    for lang in LANGUAGES:
        box = search(lang)
        before = [u.removeprefix(site_url) for u in box.requested_before_use if "/search/" in u]
        assert set(before) <= {"search/search_index.json"}, before  # the configuration alone
        box.paste("optimizer")
        links = box.finds("optimizer", site_url + LANGUAGES[lang])
        assert all(u.startswith(site_url + LANGUAGES[lang]) for u in links), links
        assert all(not u.startswith(site_url + "ja/") for u in links) or lang == "ja", links
        loaded = [u.removeprefix(site_url) for u in box.tab.requests if "/search/" in u]
        assert loaded == ["search/search_index.json", f"search/{lang}.json"], loaded


def test_japanese_phrases_typed_with_an_input_method(search, site_url):
    box = search("ja")
    for phrase, page in PHRASES.items():
        box.type_with_input_method(phrase)
        links = box.finds(phrase, site_url + "ja/" + page)
        assert all("/ja/" in u for u in links), (phrase, links)
        assert box.page.url.startswith(site_url + "ja/"), "the committing Enter left the page"


def test_japanese_phrases_pasted(search, site_url):
    box = search("ja")
    for phrase, page in PHRASES.items():
        box.paste(phrase)
        box.finds(phrase, site_url + "ja/" + page)


# Every message on the Japanese pages (whose index must still find English text); a sample
# on the English pages, which search with the plain English pipeline.
@pytest.mark.parametrize("lang, messages", [("en", list(MESSAGES)[::3]), ("ja", list(MESSAGES))],
                         ids=["en", "ja"])
def test_pasted_error_messages_and_identifiers_find_their_section(search, site_url, lang, messages):
    box = search(lang)
    prefix = LANGUAGES[lang]
    for message in messages:
        box.paste(message)
        box.finds(message, f"{site_url}{prefix}troubleshooting/errors/#{MESSAGES[message]}")
    for name, page in IDENTIFIERS.items():
        if page is None:
            box.paste(name)
            links = box.finds(name, site_url + prefix)
        else:
            links = box.top_pages(name)
            assert site_url + prefix + page in links, (name, links)
        assert all(u.startswith(site_url + prefix) for u in links), (name, links)

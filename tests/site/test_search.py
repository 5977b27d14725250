"""Search as readers use it: Japanese typed with an input method or pasted, error messages,
identifiers, one index per language, loaded on first use (docs/assets/js/search.js)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.xdist_group("site"), pytest.mark.slow]  # one built site per run

RESULT_LINKS = "as => as.map(a => { const u = new URL(a.href); u.search = ''; return u.href; })"

# Phrases as Japanese is written, without spaces, and a page each must find.
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

IDENTIFIERS = {"UnpicklingError": "troubleshooting/errors/", "scheduler.pt": None,
               "param_groups": "troubleshooting/errors/"}


class Search:
    """The search box of one page, driven as a reader's keyboard, input method or mouse does."""

    def __init__(self, tab, url):
        self.page = tab.page
        self.tab = tab
        self.page.goto(url)
        self.cdp = self.page.context.new_cdp_session(self.page)

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
            " && document.querySelectorAll('.md-search-result__item').length > 0", arg=text,
            timeout=15000)
        return self.page.eval_on_selector_all(".md-search-result__item a", RESULT_LINKS)

    def finds(self, text: str, want: str) -> list[str]:
        self.page.wait_for_function(
            "want => [...document.querySelectorAll('.md-search-result__item a')]"
            ".some(a => { const u = new URL(a.href); u.search = ''; return u.href.startsWith(want); })",
            arg=want, timeout=15000)
        return self.results_for(text)


def test_the_index_loads_on_first_use_and_each_language_has_its_own(tab, site_url):
    search = Search(tab, site_url + "ja/")
    assert not [u for u in tab.requests if "search_index" in u]
    search.paste("オプティマイザ")
    links = search.finds("オプティマイザ", site_url + "ja/")
    assert all(u.startswith(site_url + "ja/") for u in links), links
    assert [u.removeprefix(site_url) for u in tab.requests if "search_index" in u] == [
        "ja/search/search_index.json"]


def test_japanese_phrases_typed_with_an_input_method(tab, site_url):
    search = Search(tab, site_url + "ja/")
    for phrase, page in PHRASES.items():
        search.type_with_input_method(phrase)
        links = search.finds(phrase, site_url + "ja/" + page)
        assert all("/ja/" in u for u in links), (phrase, links)
        assert tab.page.url.startswith(site_url + "ja/"), "the committing Enter left the page"


def test_japanese_phrases_pasted(tab, site_url):
    search = Search(tab, site_url + "ja/")
    for phrase, page in PHRASES.items():
        search.paste(phrase)
        search.finds(phrase, site_url + "ja/" + page)


# Every message on the Japanese pages (whose index must still find English text); a sample
# on the English pages, which search with the plain English pipeline.
@pytest.mark.parametrize("lang, messages", [("", list(MESSAGES)[::3]), ("ja/", list(MESSAGES))],
                         ids=["en", "ja"])
def test_pasted_error_messages_and_identifiers_find_their_section(tab, site_url, lang, messages):
    search = Search(tab, site_url + lang)
    for message in messages:
        anchor = MESSAGES[message]
        search.paste(message)
        search.finds(message, f"{site_url}{lang}troubleshooting/errors/#{anchor}")
    for name, page in IDENTIFIERS.items():
        search.paste(name)
        links = search.finds(name, f"{site_url}{lang}{page or ''}")
        assert all(u.startswith(site_url + lang) for u in links), (name, links)

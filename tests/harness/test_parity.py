"""English and Japanese stay in step: same pages, includes, heading ids and code."""

from __future__ import annotations

import json
import re

import pytest

from sitebuild.layout import in_lang

from cookbook_testing.pages import (expanded, fences, headings, includes, notebook_code, pages_by_key,
                                    prose_lines)

PAGES = pages_by_key()
HTML_HEADING_ID = re.compile(r"<h([1-6])[^>]*\bid=\"([^\"]+)\"")
TITLE = re.compile(r'\btitle="([^"]*)"')


def _untitled(info: str) -> str:
    return TITLE.sub("", info).strip()


def test_every_page_exists_in_both_languages():
    missing = {key: sorted({"en", "ja"} - set(langs)) for key, langs in PAGES.items()
               if set(langs) != {"en", "ja"}}
    assert missing == {}


MD = {k: v for k, v in PAGES.items() if k.endswith(".md") and set(v) == {"en", "ja"}}
NB = {k: v for k, v in PAGES.items() if k.endswith(".ipynb") and set(v) == {"en", "ja"}}


@pytest.mark.parametrize("key", sorted(MD))
def test_markdown_pages_match(key):
    en, ja = (MD[key][lang] for lang in ("en", "ja"))
    en_text, ja_text = (p.read_text(encoding="utf-8") for p in (en, ja))
    # A generated table may come in each language (outputs/.../cpu.ja.md beside cpu.md).
    assert includes(en_text) == [in_lang(i, "en") for i in includes(ja_text)], \
        "snippet includes differ"
    en_heads, ja_heads = headings(en_text), headings(ja_text)
    assert [h[2] for h in en_heads] == [h[2] for h in ja_heads], "heading ids differ"
    assert [h[0] for h in en_heads] == [h[0] for h in ja_heads], "heading levels differ"
    for level, title, hid in en_heads + ja_heads:
        assert hid, f"heading without an explicit id: {title!r}"
    assert [(_untitled(i), b) for _, i, b in fences(expanded(en))] == \
           [(_untitled(i), b) for _, i, b in fences(expanded(ja))], "code blocks differ"
    for path, title in ((en, "Output"), (ja, "出力")):  # output blocks titled in the page's language
        titles = {m[1] for _, i, _ in fences(path.read_text(encoding="utf-8"))
                  if (m := TITLE.search(i))}
        assert titles <= {title}, (path.name, titles)
    assert re.findall(r"<!--.*?-->", en_text) == re.findall(r"<!--.*?-->", ja_text), \
        "block markers differ"


def _cells(path, kind):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == kind]


@pytest.mark.parametrize("key", sorted(NB))
def test_notebooks_match(key):
    en, ja = (NB[key][lang] for lang in ("en", "ja"))
    src = lambda c: "".join(c["source"])  # noqa: E731
    assert notebook_code(en) == notebook_code(ja)  # the same but for the language cell's LANG
    ids = [[m.group(1, 2) for c in _cells(p, "markdown") for m in HTML_HEADING_ID.finditer(src(c))]
           for p in (en, ja)]
    assert ids[0] == ids[1], "notebook heading ids differ"
    md_heads = [line for p in (en, ja) for c in _cells(p, "markdown")
                for line in src(c).split("\n") if re.match(r"#{1,6}\s", line)]
    assert md_heads == [], "notebook headings must be <hN id=...> so en and ja share the id"


JA_CHAR = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")


@pytest.mark.parametrize("key", sorted(MD))
def test_japanese_paragraphs_do_not_break_between_japanese_characters(key):
    """A line break between two Japanese characters shows as a space in the browser."""
    lines = prose_lines(MD[key]["ja"].read_text(encoding="utf-8"))
    breaks = [f"{a.strip()[-10:]} / {b.strip()[:10]}" for a, b in zip(lines, lines[1:])
              if a.strip() and b.strip() and JA_CHAR.match(a.rstrip()[-1])
              and JA_CHAR.match(b.lstrip()[0])]
    assert breaks == [], "join these lines"


RECIPES = ["recipes/save-and-resume.md", "recipes/safe-checkpoints.md", "recipes/exact-resume.md"]


@pytest.mark.parametrize("key", RECIPES)
def test_recipes_that_belong_together_link_each_other(key):
    """Each of the three core recipes links the other two, in both languages."""
    for lang, path in MD[key].items():
        text = path.read_text(encoding="utf-8")
        for other in RECIPES:
            if other != key:
                assert f"]({other.split('/')[1]}" in text, (path.name, other)

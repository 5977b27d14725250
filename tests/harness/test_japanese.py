"""The Japanese pages use the glossary's one term per idea (glossary.ja.md)."""

from __future__ import annotations

import json
import re

import pytest

from cookbook_testing.pages import DOCS, ROOT, lang_of, load_module, markdown_pages, notebooks, prose_lines

GLOSSARY = ROOT / "glossary.ja.md"
# Words that contain a rejected form without being it.
NOT_REJECTED = {"ロード": ("ダウンロード", "アップロード", "ワークロード", "ペイロード"),
                "素の": ("要素の",)}


def rejected_forms() -> dict[str, str]:
    """{rejected form: the glossary's term}, from the table's third column."""
    out = {}
    for line in GLOSSARY.read_text(encoding="utf-8").split("\n"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2] and not set(cells[2]) <= {"-", " "} and cells[0] != "English":
            for form in cells[2].split(","):
                out[form.strip()] = cells[1]
    return out


def _prose(path) -> list[tuple[int, str]]:
    """(line number, text) of the prose a reader reads: no code, no inline code."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        lines = [line for c in cells if c["cell_type"] == "markdown" for line in "".join(c["source"]).split("\n")]
    else:
        lines = prose_lines(path.read_text(encoding="utf-8"))
    return [(i + 1, re.sub(r"`[^`]*`", "", line)) for i, line in enumerate(lines)]


def test_the_glossary_has_rejected_forms():
    forms = rejected_forms()
    assert {"状態辞書", "既定値", "あなた", "古典的な"} <= set(forms)


JA_PAGES = [p for p in markdown_pages() + notebooks() if lang_of(p) == "ja"]


@pytest.mark.parametrize("path", JA_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_japanese_page_uses_the_glossary_terms(path):
    found = []
    for form, term in rejected_forms().items():
        for lineno, text in _prose(path):
            for exempt in NOT_REJECTED.get(form, ()):
                text = text.replace(exempt, "")
            if form in text:
                found.append(f"{form!r} (use {term!r}): {text.strip()[:60]}")
    assert found == [], "glossary.ja.md rejects these forms"


translations = load_module(ROOT / "scripts" / "translations.py", "translations")


@pytest.mark.parametrize("english, japanese", translations.pairs(),
                         ids=lambda p: p.relative_to(DOCS).as_posix())
def test_japanese_page_was_reviewed_against_the_current_english(english, japanese):
    """Like FastAPI's outdated-translation check: the English changed, the Japanese did not."""
    page = english.relative_to(DOCS).as_posix()
    assert translations.recorded(japanese) == translations.english_hash(
        english.read_text(encoding="utf-8")), (
        f"docs/{page} changed since docs/{japanese.relative_to(DOCS).as_posix()} was reviewed. "
        f"See what changed: python scripts/translations.py diff {page}; update the Japanese; "
        f"then: python scripts/translations.py reviewed {page}")


def test_a_changed_english_page_is_reported(tmp_path, monkeypatch):
    en, ja = tmp_path / "a.md", tmp_path / "a.ja.md"
    en.write_text("# A\n", encoding="utf-8")
    ja.write_text("---\ndescription: x\n---\n\n# あ\n", encoding="utf-8")
    monkeypatch.setattr(translations, "DOCS", tmp_path)
    assert translations.outdated() == [(en, ja)]
    translations.mark_reviewed(en)
    assert translations.outdated() == [] and "description: x" in ja.read_text(encoding="utf-8")
    en.write_text("# A, changed\n", encoding="utf-8")
    assert translations.outdated() == [(en, ja)]


JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("path", [p for p in JA_PAGES if p.suffix == ".md"],
                         ids=lambda p: p.relative_to(DOCS).as_posix())
def test_english_headings_have_a_japanese_gloss_in_the_toc(path):
    """A heading that quotes an English error message keeps it verbatim (readers search for
    it) and shows a Japanese gloss in the table of contents (data-toc-label)."""
    from cookbook_testing.pages import headings
    bare = []
    for level, title, _ in headings(path.read_text(encoding="utf-8")):
        text = re.sub(r"\s*\{[^}]*\}\s*$", "", title)
        label = re.search(r'data-toc-label="([^"]*)"', title)
        sentence = len(re.findall(r"(?<![.\w])[A-Za-z]{2,}(?![.\w])", text)) >= 3  # a message, not a name
        if level > 1 and sentence and not JAPANESE.search(text) and not (label and JAPANESE.search(label[1])):
            bare.append(text)
    assert bare == []

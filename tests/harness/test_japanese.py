"""The Japanese pages use the glossary's one term per idea (glossary.ja.md)."""

from __future__ import annotations

import re

import pytest

from cookbook_testing.pages import DOCS, ROOT, lang_of, load_module, markdown_pages, notebooks

lint_ja = load_module(ROOT / "scripts" / "lint_ja.py", "lint_ja")
JA_PAGES = [p for p in markdown_pages() + notebooks() if lang_of(p) == "ja"]


def test_the_glossary_has_rejected_forms():
    forms = lint_ja.rejected_forms()
    assert {"状態辞書", "既定値", "あなた", "古典的な"} <= set(forms)


def test_every_japanese_page_and_notebook_is_linted():
    assert sorted(lint_ja.japanese_files()) == sorted(JA_PAGES)


def test_textlint_finds_nothing_on_the_japanese_pages():
    """The style sheet (.textlintrc.yml) and the glossary's terms, on every Japanese page
    and the Markdown cells of every Japanese notebook."""
    findings = lint_ja.lint(lint_ja.japanese_files())
    assert findings == [], "\n".join(["python scripts/lint_ja.py reports:", *findings])


@pytest.mark.parametrize("path", JA_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_a_gloss_is_written_once_per_page(path):
    """glossary.ja.md: the gloss in brackets comes once, at first use; then the bare term."""
    text = path.read_text(encoding="utf-8")
    repeated = {f: text.count(f) for f in lint_ja.glossed_forms() if text.count(f) > 1}
    assert repeated == {}


PROBE = """# 見本

オプティマイザーの状態を保存します。
この文は読点の多さや長さを確かめるためだけに書かれていて、内容にはまったく意味がありませんが、それでもなお一文としては十分に長く、百二十字という上限を確実に超えるように、同じような言葉をいくつもいくつも重ねて書き連ね、最後の最後まで句点を打たずに、さらにもう少しだけ続けています。
学習率は値である。
ファイルにモデルに書きます。
ダウンロードしたファイルを読み込みます。

!!! note "注意"

    ラッパーなしのモデルに読み込みます。
"""


@pytest.mark.slow  # textlint in a new Node.js process, uncached
def test_the_style_sheet_reports_each_kind_of_finding(tmp_path):
    """A file with one mistake of each kind: a rejected term, a long sentence, である among
    です・ます, a doubled particle. A word that contains a rejected form is not one."""
    probe = tmp_path / "probe.ja.md"
    probe.write_text(PROBE, encoding="utf-8")
    findings = lint_ja.lint([probe], cache=False)
    rules = {f.split(": ")[1] for f in findings}
    assert {"prh", "ja-technical-writing/sentence-length",
            "ja-technical-writing/no-mix-dearu-desumasu",
            "ja-technical-writing/no-doubled-joshi"} <= rules, findings
    assert not any(":7:" in f for f in findings), findings  # ダウンロード is not ロード
    assert any(":11:" in f and "prh" in f for f in findings), findings  # inside a note


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


def test_reviewed_takes_the_english_page_and_only_japanese_pages_record_a_review():
    """Given the Japanese page, `reviewed` once wrote its record into the English page."""
    with pytest.raises(SystemExit, match="not an English page under docs/"):
        translations.main(["reviewed", "concepts/adam.ja.md"])
    assert [p for p in markdown_pages() if lang_of(p) == "en"
            and "\ntranslated_from:" in p.read_text(encoding="utf-8").split("\n---", 1)[0]] == []


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

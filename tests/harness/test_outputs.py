"""Outputs are derived, not typed: a page marks a block with `<!--output-->`, the build and the
tests insert the file its page and section give; a missing file fails that block alone."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from cookbook_testing import pages
from sitebuild import layout
from sitebuild.outputs import OutputMarkError, insert_outputs, marked_outputs

PAGE = """# T

```python
--8<-- "recipes/x.py:first"
```

<!--output-->

!!! note

    ```python
    --8<-- "recipes/x.py:second"
    ```

    <!--output-->
"""
STORED = {"outputs/recipes/x/first.txt": "one\ntwo\n", "outputs/recipes/x/second.txt": "three\n"}


def test_the_output_is_inserted_titled_in_the_page_language():
    en, missing = insert_outputs(PAGE, "recipes/x.md", STORED.get)
    assert missing == []
    assert '```text title="Output"\none\ntwo\n```' in en
    assert '    ```text title="Output"\n    three\n    ```' in en  # inside the admonition
    ja, _ = insert_outputs(PAGE, "recipes/x.ja.md", STORED.get)
    assert ja == en.replace('title="Output"', 'title="出力"')
    assert layout.OUTPUT_MARK not in en


def test_a_missing_output_names_the_command_that_writes_it():
    text, missing = insert_outputs(PAGE, "recipes/x.ja.md", {}.get)
    assert missing == ["outputs/recipes/x/first.txt", "outputs/recipes/x/second.txt"]
    assert "python scripts/outputs.py recipes/x.md" in text


@pytest.mark.parametrize("text", ["# T\n\n<!--output-->\n",
                                  "```text\nx\n```\n\n<!--output-->\n",
                                  "```python\n--8<-- \"recipes/x.py\"\n```\n<!--output-->\n",
                                  "```python\n--8<-- \"recipes/x.py:a\"\n```\n\nprose\n\n<!--output-->\n"])
def test_an_output_mark_must_follow_a_block_that_embeds_a_section(text):
    with pytest.raises(OutputMarkError, match="must follow a code block"):
        marked_outputs(text)


def test_the_build_warns_about_a_missing_output(tmp_path, caplog):
    """A warning: the strict build (make build, make serve) fails on it, naming the command."""
    import outputs as hook  # hooks/outputs.py

    (tmp_path / "outputs" / "recipes" / "x").mkdir(parents=True)
    (tmp_path / "outputs" / "recipes" / "x" / "first.txt").write_text("one\n")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="recipes/x.ja.md"))
    config = SimpleNamespace(config_file_path=str(tmp_path / "mkdocs.yml"))
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        text = hook.on_page_markdown(PAGE, page, config, None)
    assert '```text title="出力"\none\n```' in text
    (record,) = caplog.records
    assert record.name.startswith("mkdocs.") and record.levelno == logging.WARNING
    assert "outputs/recipes/x/second.txt" in record.getMessage()
    assert "python scripts/outputs.py recipes/x.md" in record.getMessage()


def test_layout_rules():
    assert layout.lang_of("recipes/x.ja.md") == "ja" and layout.lang_of(Path("a/b.md")) == "en"
    assert layout.page_key(layout.DOCS / "recipes" / "x.ja.md") == "recipes/x.md"
    assert layout.twin("recipes/x.md") == "recipes/x.ja.md"
    assert layout.twin(layout.DOCS / "n" / "a.ja.ipynb") == layout.DOCS / "n" / "a.ipynb"
    assert layout.site_path("index.ja.md") == "ja/" and layout.site_path("a/b.md") == "a/b/"
    assert layout.output_path("recipes/x.ja.md", "s") == "outputs/recipes/x/s.txt"
    assert layout.includes('```python\n--8<-- "a/b.py:c"\n```\n') == ["a/b.py:c"]
    assert layout.split_include("a/b.py:c") == ("a/b.py", "c")


def test_reading_the_blocks_of_a_page_reads_no_output_file(monkeypatch):
    """So that a missing output fails the test of its block, not the collection of every page."""
    read = Path.read_text

    def refuse(self, *args, **kwargs):
        assert "outputs" not in self.parts, f"read {self}"
        return read(self, *args, **kwargs)

    pages._code_expanded.cache_clear()
    monkeypatch.setattr(Path, "read_text", refuse)
    blocks = pages.page_blocks(layout.DOCS / "recipes" / "save-and-resume.md")
    assert any(b.output_file for b in blocks)
    pages._code_expanded.cache_clear()


def test_a_block_whose_output_is_not_written_fails_with_the_command(tmp_path):
    import test_pages

    block = pages.Block("recipes/new.md", 0, 1, "print(1)", section="first",
                        output_file="outputs/recipes/new/first.txt")
    session = pages.PageSession([block], tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"python scripts/outputs.py recipes/new.md"):
        test_pages.test_block(block, session)


def test_importorskip_is_honoured(monkeypatch):
    block = pages.Block("a.md", 0, 1, "import surely_absent_module", importorskip="surely_absent_module")
    assert "surely_absent_module" in block.skip_reason
    assert pages.Block("a.md", 0, 1, "", importorskip="json").skip_reason is None


# What a layout rule looks like when it is written again outside sitebuild.layout.
REWRITTEN = {
    "the language of a file": re.compile(r"""['"]\.ja\.['"]\s+(?:not\s+)?in\b|endswith\(['"]\.ja\.|['"]ja['"] if """),
    "the twin of a page": re.compile(r"""replace\(['"]\.ja\.|['"]\.ja['"]\s*\+|\+\s*['"]\.ja['"]"""),
    "the include syntax": re.compile(r"""re\.compile\(.*8<"""),
    "the output path": re.compile(r"""f['"]outputs/\{"""),
    "the site path": re.compile(r"""['"]ja/['"] if"""),
}


def test_no_layout_rule_is_written_twice():
    layout_file = Path(layout.__file__)
    found = []
    for folder in ("hooks", "scripts", "tests", "bench"):
        for path in sorted((layout.ROOT / folder).rglob("*.py")):
            if path == layout_file or path == Path(__file__):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
                found += [f"{path.relative_to(layout.ROOT)}:{n}: {rule}"
                          for rule, pattern in REWRITTEN.items() if pattern.search(line)]
    assert found == [], "use sitebuild.layout"


def test_the_torch_pin_has_one_source():
    """Pages, hooks, the README and the workflows say `{{ torch_minor }}` or point at
    requirements.txt; the build fills the fact in."""
    from sitebuild.facts import FactError, facts, fill_in

    pin = facts()["torch"]
    minor = facts()["torch_minor"]
    assert pin.startswith(minor + ".")
    written = []
    for path in [*layout.DOCS.rglob("*.md"), *(layout.ROOT / "hooks").rglob("*.py"),
                 layout.ROOT / "README.md", layout.ROOT / "CONTRIBUTING.md",
                 *(layout.ROOT / ".github" / "workflows").glob("*.yml")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if re.search(rf"(?<![\d.]){re.escape(minor)}(?!\.?\d)|{re.escape(pin)}", line):
                written.append(f"{path.relative_to(layout.ROOT)}:{n}")
    assert written == [], "write {{ torch_minor }} (pages) or name requirements.txt"
    assert fill_in("PyTorch {{ torch_minor }}", facts()) == f"PyTorch {minor}"
    with pytest.raises(FactError, match="unknown fact"):
        fill_in("{{ torch_major }}", facts(), "a.md")


def test_the_page_weight_report_is_dated_and_by_kind(tmp_path):
    from cookbook_testing.snippets import load_module

    page_weight = load_module(layout.ROOT / "scripts" / "page_weight.py", "page_weight")

    rows = [{"page": "a/", "kind": "page", "requests": 12, "kb": 78.2, "external": 0,
             "by_type": {"html": 8.2, "css": 25.0, "js": 45.0}, "code_kb": 2.0},
            {"page": "b/", "kind": "page", "requests": 13, "kb": 101.7, "external": 0,
             "by_type": {"html": 31.7, "css": 25.0, "js": 45.0}, "code_kb": 15.5}]
    text = page_weight.write_report(rows, tmp_path / "r.md").read_text(encoding="utf-8")
    assert re.search(r"measured \d{4}-\d\d-\d\d", text)
    assert "| page | 2 | 12–13 | 78–102 |" in text and "External requests: 0." in text
    assert "before their code is added: 1 of 2 (b/)." in text
    # Where the bytes of the heaviest page of each kind go.
    assert "| b/ | page | 31.7 | 25.0 | 45.0 | 0.0 | 0.0 | 0.0 | 101.7 | 15.5 |" in text
    # A page's own code is added to its budget; nothing else is.
    assert page_weight.budget(rows[1]) == 95.5 and rows[1]["kb"] > page_weight.budget(rows[1])
    assert page_weight.code_kb("<p>x</p><pre><code>import torch</code></pre>") > 0
    assert page_weight.code_kb("<p>x</p>") < 0.03
    assert page_weight.resource_type("other", "/cookbook/assets/javascripts/workers/search.js") == "js"
    assert page_weight.resource_type("other", "/cookbook/assets/images/favicon.png") == "image"
    assert page_weight.resource_type("fetch", "/cookbook/search/en.json") == "data"
    # The search script, received twice (page script and worker) but sent once, counts once.
    from types import SimpleNamespace as R
    got = [R(url="http://127.0.0.1:1/c/"), R(url="http://127.0.0.1:1/c/s.js"),
           R(url="http://127.0.0.1:1/c/s.js#lang=en"), R(url="https://fonts.example/x.css")]
    assert page_weight.over_the_network(got, ["/c/", "/c/s.js"]) == got[:2]


def test_a_rebuild_reuses_typeset_math_and_pruned_notebook_css(tmp_path, monkeypatch):
    """What makes an unchanged page cheap to rebuild (`make serve`): no node process for a
    formula typeset before, no stylesheet parsed again; a changed input misses the cache."""
    import subprocess

    from sitebuild import notebooks, typeset

    items = [("x^2", False), ("\\frac{a}{b}", True)]
    first = typeset._render(items, "a.md", cache=tmp_path / "katex")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("node started again"))
    assert typeset._render(items, "a.md", cache=tmp_path / "katex") == first
    with pytest.raises(pytest.fail.Exception, match="node started again"):
        typeset._render([("y", False)], "a.md", cache=tmp_path / "katex")

    big, rest = ".jupyter-wrapper .a{color:red}.jupyter-wrapper .b{color:blue}", ""
    pruned = notebooks._pruned(big, {"jupyter-wrapper", "a"}, rest, cache=tmp_path / "css")
    assert ".a{" in pruned and ".b{" not in pruned
    import tinycss2
    monkeypatch.setattr(tinycss2, "parse_stylesheet", lambda *a, **k: pytest.fail("parsed again"))
    assert notebooks._pruned(big, {"jupyter-wrapper", "a"}, rest, cache=tmp_path / "css") == pruned
    with pytest.raises(pytest.fail.Exception, match="parsed again"):
        notebooks._pruned(big, {"jupyter-wrapper", "b"}, rest, cache=tmp_path / "css")

"""The site build's own steps (hooks/sitebuild), tested without starting MkDocs."""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import pytest

from cookbook_testing.pages import SNIPPETS
from sitebuild import downloads, fonts, notebooks, repository, search, theme_css, typeset, verified


def test_every_snippet_file_is_served_for_download():
    served = downloads.snippet_downloads(SNIPPETS)
    assert served["downloads/lib/checkpoint_files.py"] == SNIPPETS / "lib" / "checkpoint_files.py"
    assert len(served) == len(list(SNIPPETS.rglob("*.py")))


def test_download_box_goes_after_the_first_paragraph_in_the_page_language():
    page = ('---\ndescription: x\n---\n\n# Title {#t}\n\nFirst paragraph,\ntwo lines.\n\n'
            '```python\n--8<-- "recipes/safe_checkpoints.py:a"\n```\n\n'
            '```python\n--8<-- "lib/checkpoint_files.py:b"\n```\n')
    en = downloads.download_box(page, "recipes/safe-checkpoints.md")
    assert en.index("two lines.") < en.index("The whole recipe as one script") < en.index("```python")
    assert "[`safe_checkpoints.py`](../downloads/recipes/safe_checkpoints.py), " \
           "[`checkpoint_files.py`](../downloads/lib/checkpoint_files.py)" in en
    assert "run `python safe_checkpoints.py`" in en
    ja = downloads.download_box(page, "recipes/safe-checkpoints.ja.md")
    assert "レシピ全体を 1 つのスクリプトで" in ja and "`python safe_checkpoints.py` で実行します" in ja
    assert downloads.download_box("# T\n\ntext\n", "index.md") == "# T\n\ntext\n"


def test_files_a_script_imports_are_offered_too():
    page = '# T\n\nx\n\n```python\n--8<-- "troubleshooting/errors/damaged_files.py:atomic_save"\n```\n'
    box = downloads.download_box(page, "troubleshooting/errors.md")
    assert "downloads/lib/checkpoint_files.py" in box
    assert "downloads/troubleshooting/errors/running_example.py" in box


def test_edit_links_only_with_a_repository_address():
    assert repository.edit_uri_for(None) == ""
    assert repository.edit_uri_for("https://github.com/example/cookbook") == "edit/main/docs/"


def test_math_is_typeset_and_kept_out_of_search():
    out = typeset.typeset('<p><span class="arithmatex">\\(\\beta_1^{\\,t}\\)</span></p>', "t.md")
    assert 'class="katex"' in out and "data-search-exclude" in out and "\\beta" not in out.split("<annotation")[0]


def test_a_tex_error_names_the_page():
    with pytest.raises(typeset.TypesetError, match="on concepts/adam.md"):
        typeset.typeset('<span class="arithmatex">\\(\\frac{1}{\\)</span>', "concepts/adam.md")


def test_katex_fonts_are_cut_to_the_glyphs_the_formulas_draw(tmp_path, monkeypatch):
    """sitebuild.fonts: the characters KaTeX draws (not its MathML), the families its classes
    select, each font of those cut to the characters (and cached), the others left whole."""
    formulas = []
    typeset.typeset('<span class="arithmatex">\\(\\hat{v}_t + \\mathbb{R}\\)</span>', "t.md",
                    formulas=formulas)
    chars, classes = fonts.drawn(formulas[0])
    assert {"v", "t", "+", "R"} <= chars and "<" not in chars
    assert "mathnormal" in classes and "katex-mathml" not in classes
    css = (fonts.KATEX_DIR / "katex.min.css").read_text(encoding="utf-8")
    assert fonts.families_used(classes, css) == {"KaTeX_Main", "KaTeX_Math", "KaTeX_AMS"}
    assert sorted(fonts.font_files(css)["KaTeX_Math"]) == ["KaTeX_Math-BoldItalic.woff2", "KaTeX_Math-Italic.woff2"]

    from fontTools.ttLib import TTFont
    full = (fonts.KATEX_DIR / "fonts" / "KaTeX_Math-Italic.woff2").read_bytes()
    cut = fonts.subset(full, chars, cache=tmp_path)
    assert len(cut) < len(full) / 2
    assert set(TTFont(io.BytesIO(cut)).getBestCmap()) == {ord(c) for c in chars} & set(
        TTFont(io.BytesIO(full)).getBestCmap())
    import fontTools.subset
    monkeypatch.setattr(fontTools.subset, "Subsetter", lambda *a: pytest.fail("cut again"))
    assert fonts.subset(full, chars, cache=tmp_path) == cut

    site = tmp_path / "site"
    (site / "assets" / "katex" / "fonts").mkdir(parents=True)
    for name in ("KaTeX_Math-Italic.woff2", "KaTeX_Fraktur-Regular.woff2"):
        (site / "assets" / "katex" / "fonts" / name).write_bytes(b"copied")
    monkeypatch.setattr(fonts, "subset", lambda font, chars, cache=None: b"cut")
    done = fonts.write_subset_fonts(site, chars, classes)
    assert "KaTeX_Math-Italic.woff2" in done and "KaTeX_Main-Regular.woff2" in done
    assert (site / "assets" / "katex" / "fonts" / "KaTeX_Math-Italic.woff2").read_bytes() == b"cut"
    assert (site / "assets" / "katex" / "fonts" / "KaTeX_Fraktur-Regular.woff2").read_bytes() == b"copied"
    assert fonts.write_subset_fonts(site, set(), set()) == []


def test_materials_stylesheet_keeps_every_rule_a_page_or_a_script_can_match(tmp_path, monkeypatch):
    """sitebuild.theme_css: a rule goes only when it needs a class that no page has and no
    script writes (alternatives inside :is() and negations need none), or right-to-left text."""
    assert theme_css.needed(".md-typeset :is(.admonition,details) .x:not(.y)") == {"md-typeset", "x"}
    assert theme_css.needed('.md-typeset a[href$=".pdf"]') == {"md-typeset"}
    css = (".md-typeset .admonition{a:1}.md-post__meta{b:2}.md-source__fact--stars{c:3}"
           "[dir=rtl] .md-typeset{d:4}.md-typeset :is(.md-post,.admonition){e:5}"
           "@media (min-width:10em){.md-post{f:6}.md-typeset{g:7}}@keyframes k{0%{h:8}}")
    used = {"md-typeset", "admonition"}
    out = theme_css.cut(css, used, ("md-source__fact--",), cache=tmp_path)
    assert out == (".md-typeset .admonition{a:1}.md-source__fact--stars{c:3}"
                   ".md-typeset :is(.md-post,.admonition){e:5}"
                   "@media (min-width:10em){.md-typeset{g:7}}@keyframes k{0%{h:8}}")
    import tinycss2
    monkeypatch.setattr(tinycss2, "parse_stylesheet", lambda *a, **k: pytest.fail("parsed again"))
    assert theme_css.cut(css, used, ("md-source__fact--",), cache=tmp_path) == out

    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text('<div class="md-typeset admonition">', encoding="utf-8")
    (site / "assets" / "b.js").write_text('h("li",{class:`md-source__fact md-source__fact--${t}`})'
                                          '+"md-search-result__item"', encoding="utf-8")
    classes, prefixes = theme_css.site_classes(site)
    assert {"md-typeset", "admonition", "md-search-result__item", "md-source__fact"} <= classes
    assert prefixes == ("md-source__fact--",)


def test_notebook_images_become_files_that_load_when_scrolled_to(tmp_path):
    import base64
    import struct
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 640, 480) + b"rest"
    html = f'<p>x</p><img alt="loss" class="" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
    out = notebooks.images_as_files(html, tmp_path)
    (name,) = [p.name for p in tmp_path.iterdir()]
    assert (tmp_path / name).read_bytes() == png and name.endswith(".png")
    assert out == (f'<p>x</p><img alt="loss" class="" src="{name}" width="640" height="480" '
                   'loading="lazy" decoding="async"/>')
    assert notebooks.images_as_files(html, tmp_path) == out  # the same file, written once


def test_notebook_dollars_become_math_but_inline_code_stays():
    cell = "<p>$m_t$ and $$v_t$$ but <code>$HOME</code></p>"
    out = typeset.dollars_to_arithmatex(cell)
    assert '<span class="arithmatex">\\(m_t\\)</span>' in out
    assert '<div class="arithmatex">\\[v_t\\]</div>' in out and "<code>$HOME</code>" in out


def test_python_code_is_kept_out_of_the_search_index_but_text_blocks_are_not():
    html = ('<div class="language-python highlight"><pre>x</pre></div>'
            '<div class="language-text highlight"><pre>RuntimeError: boom</pre></div>')
    out = search.exclude_code(html)
    assert out.count("data-search-exclude") == 1 and 'language-text highlight"><pre>' in out


def test_notebooks_become_pages_and_get_alt_text():
    files = [SimpleNamespace(src_uri="notebooks/a.ipynb"), SimpleNamespace(src_uri="b.md")]
    notebooks.mark_notebooks_as_pages(files)
    assert files[0].is_documentation_page() and not files[0].is_static_page()
    assert not hasattr(files[1], "is_static_page")
    html = ('<img alt="No description has been provided for this image" src="a.png">' * 2)
    assert notebooks.with_alt_text(html, ['loss "curve"']) == (
        '<img alt="loss &quot;curve&quot;" src="a.png"><img alt="" src="a.png">')


def test_the_zensical_staging_leaves_nothing_it_cannot_parse():
    import yaml

    from cookbook_testing.pages import ROOT, load_module
    parity = load_module(ROOT / "scripts" / "zensical_parity.py", "zensical_parity")
    staged = parity.staged_config((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert "!relative" not in staged and "!ENV" not in staged and "!!python" not in staged
    config = yaml.safe_load(staged)  # plain YAML now
    snippets = next(e["pymdownx.snippets"] for e in config["markdown_extensions"]
                    if isinstance(e, dict) and "pymdownx.snippets" in e)
    assert snippets["base_path"] == ["snippets", "."]


def test_notebook_headings_make_its_table_of_contents():
    html = ('<h1 id="t">Title</h1><h2 id="setup">The setup<a class="anchor-link" href="#setup">¶</a></h2>'
            '<p>x</p><h3 id="a-b">A &amp; B</h3>')
    assert notebooks.toc_entries(html) == [(2, "setup", "The setup"), (3, "a-b", "A & B")]


def test_notebook_code_is_excluded_where_the_search_parser_honours_it():
    html = ('<div class="jp-Cell jp-CodeCell"><div class="jp-Cell-inputWrapper">'
            '<div class="highlight-ipynb hl-python"><pre>import torch</pre></div></div></div>')
    out = search.exclude_code(html)
    assert '<div class="highlight-ipynb hl-python" data-search-exclude>' in out
    assert '<div class="jp-Cell jp-CodeCell">' in out  # not on the outer div: nested divs


def test_each_language_gets_its_own_search_index_and_material_gets_the_configuration(tmp_path):
    (tmp_path / "search").mkdir()
    docs = [{"location": "", "title": "Home", "text": ""},
            {"location": "recipes/a/", "title": "A", "text": "resume"},
            {"location": "ja/", "title": "ホーム", "text": ""},
            {"location": "ja/recipes/a/", "title": "A", "text": "再開"}]
    index = {"config": {"lang": ["en", "ja"], "separator": "[\\s]+", "pipeline": []}, "docs": docs}
    # as the search plugin writes it: \\uXXXX escapes, which tripled Japanese text
    (tmp_path / "search" / "search_index.json").write_text(json.dumps(index), encoding="utf-8")
    assert search.split_by_language(tmp_path) == {"en": 2, "ja": 2}
    read = lambda name: json.loads((tmp_path / "search" / name).read_text(encoding="utf-8"))  # noqa: E731
    en, ja, stub = read("en.json"), read("ja.json"), read("search_index.json")
    assert [d["location"] for d in en["docs"]] == ["", "recipes/a/"] and en["config"]["lang"] == ["en"]
    # Locations stay relative to the site root, where Material resolves them.
    assert [d["location"] for d in ja["docs"]] == ["ja/", "ja/recipes/a/"]
    assert ja["config"]["lang"] == ["en", "ja"]
    assert "再開" in (tmp_path / "search" / "ja.json").read_text(encoding="utf-8")  # UTF-8
    # What every page loads: the configuration alone, with the project's separator and the
    # pipeline slot that search.js fills.
    assert stub == {"config": {**en["config"], "lang": ["en"]}, "docs": []}
    assert stub["config"]["separator"] == search.SEPARATOR and "stemmer" in stub["config"]["pipeline"]


def test_a_missing_search_index_fails_the_build_with_what_to_check(tmp_path):
    with pytest.raises(search.SearchBuildError, match="search_index.json.*plugins in mkdocs.yml"):
        search.split_by_language(tmp_path)


def test_the_separator_keeps_identifiers_whole_and_splits_at_punctuation():
    split = lambda text: [w for w in re.split(search.SEPARATOR, text) if w]  # noqa: E731
    assert split("GradScaler, param_groups: load_state_dict()") == ["GradScaler", "param_groups", "load_state_dict"]
    assert split("torch.cuda.amp 1.5e-3 「再開」") == ["torch", "cuda", "amp", "1.5e", "3", "再開"]


MATERIAL_CONFIG = ('<html lang="{lang}"><body><script id="__config" type="application/json">'
                   '{{"base": "../..", "search": "../../assets/javascripts/workers/search.a7633da7.min.js",'
                   ' "translations": {{"x": "<b>"}}}}</script></body></html>')


def test_every_page_names_search_js_as_its_worker_with_its_language_index():
    for lang in ("en", "ja"):
        html = search.point_worker(MATERIAL_CONFIG.format(lang=lang), "a.md")
        config = json.loads(re.search(r'json">(.*?)</script>', html)[1])
        assert config["search"] == ("../../assets/javascripts/cookbook/search.js"
                                    f"#lang={lang}&index=../../../search/{lang}.json"
                                    "&worker=../workers/search.a7633da7.min.js")
        assert config["base"] == "../.." and config["translations"] == {"x": "<b>"}
        assert "<b>" not in html.split("__config")[1]  # nothing in it can end the <script>


def test_a_page_without_materials_configuration_fails_the_build_with_its_name():
    with pytest.raises(search.SearchBuildError, match="a.md: no Material configuration"):
        search.point_worker("<html lang=\"en\"><body></body></html>", "a.md")
    moved = MATERIAL_CONFIG.format(lang="en").replace("javascripts/workers/", "js/")
    with pytest.raises(search.SearchBuildError, match="not under assets/javascripts/workers/"):
        search.point_worker(moved, "a.md")



def _records():
    run = {"date": "2026-11-27", "device": "CPU, x86_64", "blocks": 9}
    return {"cpu": {"a.md": {**run, "torch": "2.13.0+cpu", "gpu_blocks": 2, "gpu_blocks_run": 0},
                    "b.md": {**run, "torch": "2.13.0+cpu", "gpu_blocks": 0, "gpu_blocks_run": 0}},
            "newest": {"a.md": {**run, "torch": "2.14.1", "gpu_blocks": 2, "gpu_blocks_run": 0}},
            "gpu": {"a.md": {**run, "torch": "2.11.0+cu130", "device": "NVIDIA H200",
                             "gpu_blocks": 2, "gpu_blocks_run": 2}}}


def test_the_verified_note_comes_from_the_records():
    records = _records()
    note = verified.stamp("a.md", records, "en", has_code=True)
    assert "Its 9 code blocks passed on 2026-11-27 with PyTorch 2.13.0+cpu (CPU, x86_64)" in note
    assert "PyTorch 2.14.1, a newer release" in note
    assert "its 2 GPU blocks ran on 2026-11-27 with PyTorch 2.11.0+cu130 on NVIDIA H200" in note
    ja = verified.stamp("a.md", records, "ja", has_code=True)
    assert "最終確認" in ja and "NVIDIA H200" in ja and "2.14.1" in ja
    # A page with GPU blocks that never ran on a GPU says so; one without says nothing of GPUs.
    del records["gpu"]
    assert "its 2 GPU blocks have not run on a GPU yet" in verified.stamp("a.md", records, "en", True)
    assert "GPU" not in verified.stamp("b.md", records, "en", True)
    assert "not been verified" in verified.stamp("c.md", records, "en", True)
    assert verified.stamp("index.md", records, "en", has_code=False) == ""


def test_notebook_pages_keep_only_the_jupyter_styles_they_use():
    css = (".jupyter-wrapper{--used:red;--unused:blue;--chain:var(--unused2);--unused2:1px}"
           ".jupyter-wrapper :root{--dead:0}.jupyter-wrapper .jp-Cell,.jupyter-wrapper .jp-Absent{color:var(--used)}"
           ".jupyter-wrapper .jp-Absent{color:green}@media print{.jupyter-wrapper .jp-Cell{margin:0}"
           ".jupyter-wrapper .jp-Absent{margin:0}}.jupyter-wrapper body{margin:0}")
    page = (f'<style>{css}</style><style>.x{{width:var(--theme)}}</style>'
            '<div class="jupyter-wrapper"><div class="jp-Cell"></div></div>')
    out = notebooks.prune_notebook_css(page, other_css=".y{color:var(--chain)}")
    kept = out.split("<style>")[1].split("</style>")[0]
    assert ".jupyter-wrapper .jp-Cell{color:var(--used)}" in kept and "jp-Absent" not in kept
    assert "@media print{.jupyter-wrapper .jp-Cell{margin:0}}" in kept
    assert ":root" not in kept and "body" not in kept and "--unused:" not in kept
    # Read by another stylesheet of the page: kept, with what it reads in turn.
    assert "--chain:var(--unused2)" in kept and "--unused2:1px" in kept
    assert out.endswith('<style>.x{width:var(--theme)}</style><div class="jupyter-wrapper"><div class="jp-Cell"></div></div>')
def test_notebook_pages_link_their_own_notebook_and_colab_only_on_github():
    html = '<h1 id="t">Title</h1><p>x</p><h1 id="u">Other</h1>'
    en = notebooks.with_run_links(html, "notebooks/a.ipynb")
    assert en.count("notebook-run") == 1 and en.index("notebook-run") < en.index("<p>x</p>")
    assert '<a href="a.ipynb" download>Download the notebook' in en and "colab" not in en.lower()
    ja = notebooks.with_run_links(html, "notebooks/a.ja.ipynb", "https://colab.example/a")
    assert '<a href="a.ja.ipynb" download>ノートブックをダウンロード' in ja
    assert '<a href="https://colab.example/a">Colab で開く</a>' in ja
    colab = "https://colab.research.google.com/github/o/r/blob/main/docs/notebooks/a.ja.ipynb"
    for url in ("https://github.com/o/r", "https://github.com/o/r/", "https://github.com/o/r.git"):
        assert repository.colab_url(url, "notebooks/a.ja.ipynb") == colab, url
    for url in (None, "", "https://gitlab.com/o/r", "https://github.com/o", "https://github.com/o/r/tree/x"):
        assert repository.colab_url(url, "notebooks/a.ipynb") is None, url


def test_without_a_repository_address_nothing_points_to_one():
    """The site tests build with REPO_URL, as the Pages workflow does; without it, each piece
    that would link to a repository links nowhere."""
    import jinja2

    from cookbook_testing.pages import ROOT

    assert repository.edit_uri_for(None) == "" and repository.colab_url(None, "notebooks/a.ipynb") is None
    assert "colab" not in notebooks.with_run_links('<h1 id="t">T</h1>', "notebooks/a.ipynb", None).lower()
    footer = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "overrides" / "partials"))
    for lang in ("en", "ja"):
        config = SimpleNamespace(repo_url=None, theme=SimpleNamespace(language=lang))
        html = footer.get_template("copyright.html").render(config=config)
        assert "issues/new" not in html and "href" in html  # the Material credit only
    mkdocs_yml = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "repo_url: !ENV [REPO_URL, null]" in mkdocs_yml and 'edit_uri: ""' in mkdocs_yml


def test_serve_rebuilds_when_a_watched_file_is_written_and_not_when_it_is_read(tmp_path):
    """hooks/serve_watch.py: the kernel's events, writes only (the build reads every file)."""
    import importlib.util
    import time

    from mkdocs.livereload import LiveReloadServer
    from watchdog.observers.polling import PollingObserver

    from cookbook_testing.pages import ROOT

    spec = importlib.util.spec_from_file_location("serve_watch", ROOT / "hooks" / "serve_watch.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = tmp_path / "page.md"
    page.write_text("a")
    server = LiveReloadServer(builder=lambda: None, host="127.0.0.1", port=0, root=str(tmp_path))
    server.watch(str(tmp_path))
    server = hook.on_serve(server, config=None, builder=None)
    if isinstance(server.observer, PollingObserver):
        pytest.skip("watchdog has no native observer on this platform")
    assert list(server._watched_paths) == [str(tmp_path)]

    def rebuild_wanted_after(action, wait=5.0) -> bool:
        server._want_rebuild = False
        action()
        deadline = time.monotonic() + wait
        while not server._want_rebuild and time.monotonic() < deadline:
            time.sleep(0.01)
        return server._want_rebuild

    server.observer.start()
    try:
        assert not rebuild_wanted_after(page.read_text, wait=0.5)  # inotify: milliseconds
        assert rebuild_wanted_after(lambda: page.write_text("b"))
        assert rebuild_wanted_after(lambda: (tmp_path / "new.md").write_text("c"))
    finally:
        server.observer.stop()
        server.observer.join()

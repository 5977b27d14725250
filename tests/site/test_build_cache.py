"""What a rebuild takes from the cache (hooks/build_cache.py, sitebuild.reuse): the same as it
would compute, and computed again when anything it depends on changes."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pymdownx.highlight
import pytest

from sitebuild import reuse
from sitebuild.layout import ROOT


class Counted:
    """Wraps a function (its signature too) and counts its calls."""

    def __init__(self, function):
        self.function, self.calls = function, 0
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def test_highlighted_code_is_reused_until_its_source_or_settings_change(tmp_path):
    original = Counted(pymdownx.highlight.Highlight.highlight)
    cached = reuse.cached_highlight(original, "versions", cache=tmp_path)
    highlighter = pymdownx.highlight.Highlight(None, pygments_lang_class=True, anchor_linenums=True)

    first = cached(highlighter, "x = 1\n", "python", code_block_count=3)
    assert first == original.function(highlighter, "x = 1\n", "python", code_block_count=3)
    assert "__codelineno-3-1" in first
    assert cached(highlighter, "x = 1\n", "python", code_block_count=3) == first
    assert original.calls == 1

    assert "__codelineno-4-1" in cached(highlighter, "x = 1\n", "python", code_block_count=4)
    assert cached(highlighter, "x = 2\n", "python", code_block_count=3) != first
    assert original.calls == 3
    highlighter.pygments_lang_class = False
    assert "language-python" not in cached(highlighter, "x = 1\n", "python", code_block_count=3)
    assert reuse.cached_highlight(original, "newer pygments", cache=tmp_path)(
        highlighter, "x = 1\n", "python", code_block_count=3)
    assert original.calls == 5

    cached(highlighter, "x", "python", inline=True)  # an element, not text: never cached
    cached(highlighter, "x", "python", inline=True)
    assert original.calls == 7


def _page(content="<h1 id='t'>T</h1><p>text</p>", url="a/", title="T", meta=None, toc=()):
    return SimpleNamespace(content=content, url=url, title=title, meta=meta or {}, toc=list(toc))


def test_search_entries_are_reused_until_the_page_changes(tmp_path):
    def add_entry(index, page):
        index.entries.append({"location": page.url, "title": page.title, "text": page.content})

    original = Counted(add_entry)
    cached = reuse.cached_search_entries(original, "versions", cache=tmp_path)
    index = SimpleNamespace(entries=[{"location": "other/"}])
    cached(index, _page())
    cached(index, _page())
    assert original.calls == 1
    assert index.entries[1] == index.entries[2] == {"location": "a/", "title": "T",
                                                     "text": "<h1 id='t'>T</h1><p>text</p>"}
    link = SimpleNamespace(title="T", id="t", url="#t", level=1, children=[])
    for changed in (_page(content="<p>new</p>"), _page(url="b/"), _page(title="U"),
                    _page(meta={"search": {"boost": 2}}), _page(toc=[link])):
        cached(index, changed)
    assert original.calls == 6


def test_compiled_templates_are_kept_apart_for_another_environment():
    env = jinja2.Environment()
    assert reuse.template_cache(env) == reuse.template_cache(jinja2.Environment())
    env.filters["url"] = lambda value: value
    assert reuse.template_cache(env) != reuse.template_cache(jinja2.Environment())
    with_loops = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
    assert reuse.template_cache(with_loops) != reuse.template_cache(jinja2.Environment())


def _hook():
    spec = importlib.util.spec_from_file_location("build_cache_hook", ROOT / "hooks" / "build_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_each_language_keeps_its_own_rendered_notebooks(lang):
    """mkdocs-jupyter deletes the cached notebooks that a build did not use: in one folder, the
    Japanese build deleted the English notebook and the next English build the Japanese one."""
    jupyter = SimpleNamespace(config={"cache_dir": ".cache/mkdocs-jupyter"})
    config = SimpleNamespace(config_file_path=str(ROOT / "mkdocs.yml"),
                             plugins={"mkdocs-jupyter": jupyter,
                                      "i18n": SimpleNamespace(current_language=lang)})
    _hook().on_pre_build(config)
    folder = Path(jupyter.config["cache_dir"])
    assert folder.name == lang and folder.is_relative_to(ROOT / ".cache" / "mkdocs-jupyter")


class FakePage:
    def __init__(self, markdown, src_uri="recipes/a.md"):
        self.markdown = markdown
        self.file = SimpleNamespace(src_uri=src_uri, url=src_uri.replace(".md", "/"),
                                    dest_uri=src_uri.replace(".md", "/index.html"))


class FakeFile:
    def __init__(self, src_uri, url):
        self.src_uri, self.url = src_uri, url


class FakeFiles(list):
    def get_file_from_path(self, uri):
        return next(f for f in self if f.src_uri == uri)


def _site(tmp_path):
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "a.py").write_text("# --8<-- [start:x]\nx = 1\n# --8<-- [end:x]\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    config = {"mdx_configs": {"pymdownx.snippets": {"base_path": [str(tmp_path / "snippets")]}},
              "config_file_path": str(tmp_path / "mkdocs.yml"), "markdown_extensions": ["toc"],
              "validation": {}, "use_directory_urls": True, "docs_dir": str(tmp_path / "docs")}
    files = FakeFiles([FakeFile("recipes/a.md", "recipes/a/")])
    return config, files


def _render(page, config, files):
    page.content = f"<p>{page.markdown}</p>"
    page.toc, page._title_from_render, page.present_anchor_ids = [], "A", {"x"}
    page.links_to_anchors = {files[0]: {"x": "a.md#x"}}


def test_serve_renders_again_only_a_page_whose_inputs_changed(tmp_path):
    config, files = _site(tmp_path)
    text = '# A\n\n```python\n--8<-- "a.py:x"\n```\n'
    original, memo = Counted(_render), {}
    render = reuse.remembered_render(original, memo, cache=None)
    render(FakePage(text), config, files)
    again, files = FakePage(text), FakeFiles([FakeFile("recipes/a.md", "recipes/a/")])
    render(again, config, files)  # the next rebuild: the same inputs, new File objects
    assert original.calls == 1
    assert (again.content, again._title_from_render, again.present_anchor_ids) == (f"<p>{text}</p>", "A", {"x"})
    assert again.links_to_anchors == {files[0]: {"x": "a.md#x"}}

    key = reuse.render_key(FakePage(text), config, files)
    (tmp_path / "snippets" / "a.py").write_text("# --8<-- [start:x]\nx = 2\n# --8<-- [end:x]\n")
    assert reuse.render_key(FakePage(text), config, files) != key, "an embedded file changed"
    assert reuse.render_key(FakePage(text + "more\n"), config, files) != key
    assert reuse.render_key(FakePage(text, "recipes/b.md"), config, files) != key
    moved = FakeFiles([FakeFile("recipes/a.md", "recipes/a.html")])
    assert reuse.render_key(FakePage(text), config, moved) != key, "links are rewritten to files"
    (tmp_path / "mkdocs.yml").write_text("site_name: u\n")
    assert reuse.render_key(FakePage(text), config, files) != key, "the configuration changed"
    block = "--8<--\na.py\n--8<--\n"  # embeds a file in a form render_key does not read
    assert reuse.render_key(FakePage(block), config, files) is None


def test_a_render_that_warned_is_rendered_again(tmp_path):
    import logging

    config, files = _site(tmp_path)

    def warns(page, config, files):
        _render(page, config, files)
        logging.getLogger("mkdocs.structure.pages").warning("a link to nowhere")

    original = Counted(warns)
    render = reuse.remembered_render(original, {}, cache=tmp_path / "pages")
    render(FakePage("# A\n"), config, files)
    render(FakePage("# A\n"), config, files)
    assert original.calls == 2


def test_a_page_rendered_by_an_earlier_build_comes_from_the_cache(tmp_path):
    config, files = _site(tmp_path)
    text = '# A\n\n```python\n--8<-- "a.py:x"\n```\n'
    original = Counted(_render)
    reuse.remembered_render(original, {}, cache=tmp_path / "pages")(FakePage(text), config, files)
    later, files = FakePage(text), FakeFiles([FakeFile("recipes/a.md", "recipes/a/")])
    reuse.remembered_render(original, {}, cache=tmp_path / "pages")(later, config, files)
    assert original.calls == 1
    assert later.content == f"<p>{text}</p>" and later.links_to_anchors == {files[0]: {"x": "a.md#x"}}
    (tmp_path / "snippets" / "a.py").write_text("# --8<-- [start:x]\nx = 2\n# --8<-- [end:x]\n")
    reuse.remembered_render(original, {}, cache=tmp_path / "pages")(FakePage(text), config, files)
    assert original.calls == 2


def test_a_render_that_set_no_links_to_anchors_comes_back_from_the_cache_without_them(tmp_path):
    """The cache is pickled: a render that set no links_to_anchors is read back in another
    process as one that set none, not as one that set a stranger object."""
    config, files = _site(tmp_path)
    text = "# A\n"

    def render_without_links(page, config, files):
        page.content, page.toc, page._title_from_render, page.present_anchor_ids = "<p>A</p>", [], "A", set()

    original = Counted(render_without_links)
    reuse.remembered_render(original, {}, cache=tmp_path / "pages")(FakePage(text), config, files)
    later = FakePage(text)
    reuse.remembered_render(original, {}, cache=tmp_path / "pages")(later, config, files)  # a new memo: read from disk
    assert original.calls == 1
    assert later.content == "<p>A</p>" and "links_to_anchors" not in later.__dict__


def test_the_themes_files_are_listed_once_and_a_docs_file_still_beats_a_theme_file(tmp_path):
    from mkdocs.structure.files import File, Files

    own = tmp_path / "overrides"
    (own / "assets").mkdir(parents=True)
    (own / "assets" / "a.css").write_text("a")
    config = SimpleNamespace(theme=SimpleNamespace(dirs=[str(own)], static_templates=[]),
                             markdown_extensions=[], site_dir=str(tmp_path / "site"),
                             use_directory_urls=True)

    def listed(files, env, config):  # what MkDocs adds: every file of the theme folders
        for folder in config.theme.dirs:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    files.append(File(path.relative_to(folder).as_posix(), folder,
                                      config.site_dir, True))

    original = Counted(listed)
    add = reuse.remembered_theme_files(original, {})
    docs = tmp_path / "docs"
    docs.mkdir()
    first, second = Files([]), Files([File("assets/a.css", str(docs), config.site_dir, True)])
    add(first, None, config)
    add(second, None, config)
    assert original.calls == 1
    assert [(f.src_uri, f.src_dir) for f in first] == [("assets/a.css", str(own))]
    assert [(f.src_uri, f.src_dir) for f in second] == [("assets/a.css", str(docs))]
    (own / "assets" / "b.css").write_text("b")  # the project's own theme folder changed
    third = Files([])
    add(third, None, config)
    assert original.calls == 2 and [f.src_uri for f in third] == ["assets/a.css", "assets/b.css"]

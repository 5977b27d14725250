"""What a build can take from an earlier build, or the Japanese build from the English one,
because the content that determines it has not changed (hooks/build_cache.py):

- Highlighted code: the HTML of one code block, keyed by its source, its language, its
  attributes (title, id, line numbers...), the highlighting settings, and the versions of
  Pygments and pymdownx. Most code is on both pages of a pair, and unchanged from one build to
  the next.
- Search entries: what Material's search adds to the index for one page, keyed by the page's
  HTML, address, title, metadata and table of contents (all it reads) and Material's version.
- The theme's templates, compiled by Jinja (its bytecode cache, in a folder named by the
  environment that compiles them).
- Rendered pages: what MkDocs sets when it renders a page's Markdown as HTML (content, table of
  contents, title, anchors), keyed by the page's text after the hooks, the files it embeds,
  the configuration, where every file is (links are rewritten to them) and the versions of
  what renders it (`render_key`); kept in memory too, for the rebuilds of `make serve`.
- The files a build copies from the themes: MkDocs walks every file of Material's folder at
  each build of each language; listed once per process instead (in memory only).

Each value is a file in .cache/sitebuild/<kind>/, named by the hash of its key, written whole
or not at all (builds and test workers share the cache); `make clean` removes it. The math
(sitebuild.typeset) and the notebooks' stylesheet (sitebuild.notebooks) are cached the same way.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
import logging
import os
import pickle
import re
import sys
import sysconfig
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

from mkdocs.structure.files import File

from sitebuild import layout
from sitebuild.layout import CACHE, write_cached

HIGHLIGHT_CACHE = CACHE / "highlight"
SEARCH_CACHE = CACHE / "search"


def key_of(*parts: Any) -> str:
    """A cache file's name: the hash of everything that determines its value."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True,
                                     default=repr).encode("utf-8")).hexdigest()[:32]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _unstable(key: str) -> bool:
    """Whether a key holds an object shown by its address, which differs in every process:
    such a value is not cached."""
    return " at 0x" in key


def cached_highlight(highlight: Callable, versions: str, cache: Path | None = HIGHLIGHT_CACHE) -> Callable:
    """pymdownx's `Highlight.highlight(self, src, language, ...)`, which returns a code block's
    HTML, taking the HTML of an earlier call with the same arguments and the same settings
    instead of making a lexer and a formatter and highlighting again. Inline code (an element,
    not text) and titles stored as HTML (the call's only side effect) are not cached."""
    signature = inspect.signature(highlight)

    @functools.wraps(highlight)
    def cached(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        arguments = {k: v for k, v in call.arguments.items() if k != "self"}
        settings = {k: v for k, v in vars(self).items() if k != "md"}
        if (cache is None or arguments["inline"] or self.auto_title
                or getattr(self, "title_mode", "text") == "html"):
            return highlight(self, *args, **kwargs)
        key = json.dumps([versions, arguments, settings], sort_keys=True, default=repr)
        if _unstable(key):
            return highlight(self, *args, **kwargs)
        path = cache / key_of(key)
        html = _read(path)
        if html is None:
            html = highlight(self, *args, **kwargs)
            write_cached(path, html)
        return html
    return cached


def _toc(items) -> list:
    return [[item.title, item.id, item.url, item.level, _toc(item.children)] for item in items]


def page_search_key(page, versions: str) -> str:
    """Everything Material's search reads from a page to index it."""
    return key_of(versions, page.content, page.url, page.title, page.meta, _toc(page.toc))


def cached_search_entries(add_entry: Callable, versions: str,
                          cache: Path | None = SEARCH_CACHE) -> Callable:
    """Material's `SearchIndex.add_entry_from_context(page)`, which parses the page's HTML and
    appends its sections to `index.entries`, taking the entries of an earlier build of the
    same page instead of parsing it again."""
    @functools.wraps(add_entry)
    def cached(index, page):
        if cache is None:
            return add_entry(index, page)
        path = cache / page_search_key(page, versions)
        stored = _read(path)
        if stored is not None:
            index.entries.extend(json.loads(stored))
            return None
        before = len(index.entries)
        result = add_entry(index, page)
        write_cached(path, json.dumps(index.entries[before:], ensure_ascii=False, default=str))
        return result
    return cached


THEME_FILES: dict[tuple, list[tuple[str, str]]] = {}  # by theme_files_key, for `make serve`


def _installed(folder: str) -> bool:
    """A folder of an installed package (a theme's): it does not change while a build runs."""
    paths = sysconfig.get_paths()
    return any(Path(folder).is_relative_to(paths[k]) for k in ("purelib", "platlib"))


def theme_files_key(config) -> tuple:
    """What decides the files a build takes from the themes: their folders, the settings that
    exclude files, and the names in the folders that can change (the project's overrides/)."""
    dirs = list(config.theme.dirs)
    own = sorted(os.path.relpath(os.path.join(root, name), folder)
                 for folder in dirs if not _installed(folder)
                 for root, _, names in os.walk(folder) for name in names)
    return (tuple(dirs), _described(config.theme.static_templates),
            _described(config.markdown_extensions), tuple(own))


def remembered_theme_files(add_files: Callable, memo: dict = THEME_FILES) -> Callable:
    """MkDocs' `Files.add_files_from_theme(files, env, config)` walks every file of every theme
    folder (Material's: 14,500 icons and templates) at every build of every language, to add
    the 43 that are copied. Done once per process for the same theme_files_key."""
    @functools.wraps(add_files)
    def add(files, env, config):
        key = theme_files_key(config)
        if key not in memo:
            found = type(files)([])
            add_files(found, env, config)
            memo[key] = [(f.src_uri, f.src_dir) for f in found]
        for path, folder in memo[key]:
            if files.get_file_from_path(path) is None:  # a docs file beats a theme file
                files.append(File(path, folder, config.site_dir, config.use_directory_urls))
        return None
    return add


TEMPLATE_CACHE = CACHE / "templates"
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _described(value) -> str:
    return ADDRESS.sub("", repr(value))


def template_cache(env, cache: Path = TEMPLATE_CACHE) -> Path:
    """Where the theme's templates, compiled by this Jinja environment, are kept between builds.

    Jinja's bytecode cache checks each template's source, but not the environment that
    compiled it: its settings, extensions (the i18n plugin adds one), and its filters and
    tests (the compiled code passes each its context or not). The folder is named by them all,
    with the versions of Jinja and Python."""
    def named(functions: dict) -> list:
        return sorted((name, _described(getattr(f, "jinja_pass_arg", None)))
                      for name, f in functions.items())

    settings = {k: _described(v) for k, v in vars(env).items()
                if k not in ("loader", "cache", "bytecode_cache", "globals", "filters", "tests")}
    return cache / key_of(sys.version, version("jinja2"), settings, named(env.filters),
                          named(env.tests))


RENDER_CACHE = CACHE / "pages"
RENDERED: dict[str, dict] = {}  # what this process rendered or read, by render_key (`make serve`)
# What renders Markdown, besides the configuration: a newer version may render differently.
RENDERERS = ("markdown", "pymdown-extensions", "mkdocs", "pygments")
MISSING = object()
SNAPSHOT_FORMAT = 2  # what _snapshot stores; a new format leaves the older files unread


def _included(text: str, bases: list[Path], seen: set[str]) -> list:
    """(file, hash of its text) for every file a text embeds, and those they embed."""
    out = []
    for target in layout.includes(text):
        name = layout.split_include(target)[0]
        if name in seen:
            continue
        seen.add(name)
        for base in bases:
            path = Path(base) / name
            if path.is_file():
                content = path.read_text(encoding="utf-8")
                out.append([str(path), hashlib.sha256(content.encode("utf-8")).hexdigest()])
                out += _included(content, bases, seen)
    return out


@functools.cache
def _renderers() -> list[str]:
    return [sys.version, *(f"{name} {version(name)}" for name in RENDERERS)]


def render_key(page, config, files) -> str | None:
    """Everything the Markdown of a page is rendered from: its text (after the hooks), the
    files it embeds, the site's configuration file and Markdown settings, where the page is
    and where every other file is (links are rewritten to them). None for a page that embeds
    in a form other than `--8<-- "file"` lines: its embedded files are not known here."""
    text = page.markdown
    marks = [line for line in text.split("\n") if "8<-" in line]
    if len(marks) != len(layout.includes(text)):
        return None
    snippets = (config["mdx_configs"] or {}).get("pymdownx.snippets", {})
    bases = [Path(b) for b in snippets.get("base_path", ["."])]
    site = Path(config["config_file_path"]).read_text(encoding="utf-8")
    return key_of(SNAPSHOT_FORMAT, _renderers(),
                  text, _included(text, bases, set()), site, _described(config["markdown_extensions"]),
                  _described(config["mdx_configs"]), _described(config["validation"]),
                  config["use_directory_urls"], config["docs_dir"],
                  page.file.src_uri, page.file.url, page.file.dest_uri,
                  sorted((f.src_uri, f.url) for f in files), logging.getLogger("mkdocs").getEffectiveLevel())


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += 1


def remembered_render(render: Callable, memo: dict = RENDERED,
                      cache: Path | None = RENDER_CACHE) -> Callable:
    """MkDocs' `Page.render(page, config, files)`, which turns the page's Markdown into HTML
    and sets its content, table of contents, title, anchors and links to anchors: a page
    rendered before from the same inputs (in this process, or by an earlier build, from the
    cache) gets what that render set instead. A render that logged a warning is not
    remembered, so that the warning comes again."""
    @functools.wraps(render)
    def remembered(page, config, files):
        key = render_key(page, config, files)
        if key is not None and key not in memo and cache is not None and (cache / key).is_file():
            memo[key] = pickle.loads((cache / key).read_bytes())
        if key is not None and key in memo:
            _restore(page, memo[key], files)
            return None
        warnings = _Warnings()
        loggers = [logging.getLogger("mkdocs"), logging.getLogger()]
        for logger in loggers:
            logger.addHandler(warnings)
        try:
            result = render(page, config, files)
        finally:
            for logger in loggers:
                logger.removeHandler(warnings)
        if key is not None and not warnings.count:
            memo[key] = _snapshot(page)
            if cache is not None:
                _write_bytes(cache / key, pickle.dumps(memo[key]))
        return result
    return remembered


def _write_bytes(path: Path, data: bytes) -> None:
    """Whole or not at all, as layout.write_cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _snapshot(page) -> dict:
    links = page.__dict__.get("links_to_anchors", MISSING)
    # A render may set no links_to_anchors at all: said by a key of its own, because the
    # snapshot is pickled, and an unpickled sentinel object is not MISSING any more.
    return {"content": page.content, "toc": copy.deepcopy(page.toc),
            "title": page._title_from_render, "anchors": set(page.present_anchor_ids or ()),
            "has_links": links is not MISSING,
            "links": None if links is MISSING or links is None
            else {f.src_uri: dict(v) for f, v in links.items()}}


def _restore(page, saved: dict, files) -> None:
    page.content = saved["content"]
    page.toc = copy.deepcopy(saved["toc"])
    page._title_from_render = saved["title"]
    page.present_anchor_ids = set(saved["anchors"])
    links = saved["links"]
    if saved.get("has_links"):
        page.links_to_anchors = links if links is None else {
            files.get_file_from_path(uri): dict(v) for uri, v in links.items()}

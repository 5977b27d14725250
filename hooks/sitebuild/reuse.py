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

Each value is a file in .cache/sitebuild/<kind>/, named by the hash of its key, written whole
or not at all (builds and test workers share the cache); `make clean` removes it. The math
(sitebuild.typeset) and the notebooks' stylesheet (sitebuild.notebooks) are cached the same way.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

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

"""The build side of the site's search; `docs/assets/javascripts/cookbook/search.js` is the
browser side (what the reader's browser does with what is written here).

- Python code, notebook code cells and typeset math stay out of the index
  (`data-search-exclude`): readers search prose, headings and quoted error messages
  (```text blocks stay indexed).
- Each language has its own index, `search/<lang>.json`, written as UTF-8 instead of `\\uXXXX`
  escapes (which tripled Japanese text). `search/search_index.json`, which Material's bundle
  fetches on every page, holds only the configuration; the search worker loads the page
  language's index when the reader first goes to the search box.
- Every page names `search.js` as its search worker (`point_worker`), with its language's
  index and Material's own worker, which `search.js` loads and feeds.
- The separator splits words at spaces and punctuation only: an identifier reaches the
  index whole (`param_groups`, `GradScaler`), and `search.js` adds its parts.
"""

from __future__ import annotations

import json
from pathlib import Path
import posixpath
import re

LANGUAGES = ("en", "ja")
# What each language's index searches with: English alone, or Japanese and the English of
# the error messages and identifiers that Japanese pages quote.
INDEX_LANGUAGES = {"en": ["en"], "ja": ["en", "ja"]}
STUB = "search/search_index.json"          # where Material's bundle looks, from every page
INDEX = "search/{lang}.json"                # one per language
WORKER = "assets/javascripts/cookbook/search.js"   # beside Material's lunr/, whose scripts
MATERIAL_WORKER = "assets/javascripts/workers/"   # Material's worker loads from "../lunr"
# Words end at white space and punctuation (Japanese included) and at a dot before a
# letter; not at `_` or a change of case, so that identifiers stay whole.
SEPARATOR = r'[\s\u200b\-,:!=\[\]()"`/、。「」（）・]+|\.(?!\d)|&[lg]t;'
# "stemmer" keeps lunr's stemmer slot in both pipelines: search.js fills it with its
# normaliser (identifier parts, Japanese endings). No trimmer: it strips Japanese.
PIPELINE = ["stopWordFilter", "stemmer"]

# Material's search parser matches excluded elements by tag name alone, so an exclusion on an
# element that holds another of the same tag ends at the first inner closing tag: exclude the
# innermost code containers (a notebook cell's `highlight-ipynb` div holds only its <pre>;
# `clipboard-copy-txt` is the copy of its code that the copy button uses).
CODE = re.compile(r'<div class="(?:language-(?:python|py|pycon) highlight|highlight-ipynb[^"]*|clipboard-copy-txt)"')
CONFIG = re.compile(r'(<script id="__config" type="application/json">)(.*?)(</script>)', re.S)
HTML_LANG = re.compile(r'<html lang="([^"]+)"')


class SearchBuildError(RuntimeError):
    pass


def exclude_code(content: str) -> str:
    return CODE.sub(lambda m: m[0] + " data-search-exclude", content)


def language_of(location: str) -> str:
    return next((lang for lang in LANGUAGES[1:] if location.startswith(f"{lang}/")), LANGUAGES[0])


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def split_by_language(site_dir: str | Path) -> dict[str, int]:
    """Moves each language's pages out of the site-wide index into `search/<lang>.json` and
    leaves the configuration alone in `search/search_index.json`.

    Locations stay relative to the site root, where Material resolves them. Returns the
    number of entries per index."""
    site = Path(site_dir)
    path = site / STUB
    if not path.exists():
        raise SearchBuildError(f"{path}: the search plugin wrote no index; is `search` still "
                               "among the plugins in mkdocs.yml?")
    index = json.loads(path.read_text(encoding="utf-8"))
    config = {**index["config"], "separator": SEPARATOR, "pipeline": PIPELINE}
    counts = {}
    for lang in LANGUAGES:
        docs = [d for d in index["docs"] if language_of(d["location"]) == lang]
        _write(site / INDEX.format(lang=lang),
               {**index, "config": {**config, "lang": INDEX_LANGUAGES[lang]}, "docs": docs})
        counts[lang] = len(docs)
    # What the page itself needs: the separator, to highlight a result's words on its page.
    _write(path, {"config": {**config, "lang": INDEX_LANGUAGES[LANGUAGES[0]]}, "docs": []})
    return counts


def worker_address(material_worker: str, lang: str) -> str:
    """`search.js` as seen from the page that names Material's worker as `material_worker`,
    told its language's index and Material's worker, both relative to itself."""
    prefix, sep, name = material_worker.rpartition(MATERIAL_WORKER)
    if not sep or "/" in name:
        raise SearchBuildError(f"Material's search worker is {material_worker!r}, not under "
                               f"{MATERIAL_WORKER}: update WORKER in hooks/sitebuild/search.py")
    here = posixpath.dirname(WORKER)
    index = posixpath.relpath(INDEX.format(lang=lang), here)
    material = posixpath.relpath(MATERIAL_WORKER + name, here)
    return f"{prefix}{WORKER}#lang={lang}&index={index}&worker={material}"


def point_worker(html: str, page: str = "") -> str:
    """Names `search.js` as the page's search worker in Material's configuration (its
    documented way to a custom search worker), for the language of the page's <html>."""
    config, lang = CONFIG.search(html), HTML_LANG.search(html)
    if not config or not lang:
        raise SearchBuildError(f"{page or 'a page'}: no Material configuration (<script id="
                               "\"__config\">) or no <html lang>: has Material's base.html changed?")
    data = json.loads(config[2])
    data["search"] = worker_address(data["search"], language_of(lang[1] + "/"))
    text = json.dumps(data, ensure_ascii=False)
    for char in "<>&":  # as Jinja's tojson writes them: nothing in it can end the <script>
        text = text.replace(char, f"\\u{ord(char):04x}")
    return html[:config.start(2)] + text + html[config.end(2):]

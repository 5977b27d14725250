"""The site's layout rules, written once: hooks, scripts and tests import them from here.

    docs/<section>/<topic>.md        a page in English (the default language)
    docs/<section>/<topic>.ja.md     its Japanese twin (`.ipynb` notebooks alike)
    --8<-- "<file>.py:<section>"     a fence's body: embeds one named section of snippets/<file>.py
    <!--output-->                    after a fence: the block has an output, stored at
    outputs/<page>/<section>.txt     (page without .md): written by `make outputs`, never typed
    ja/<section>/<topic>/            where the site serves a Japanese page (English: no "ja/")

Paths are given relative to docs/ ("recipes/x.ja.md") or as Path objects under docs/;
every function takes either. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"
LIBRARY = SNIPPETS / "lib"  # functions that several pages' scripts import by name (checkpoint_files)
OUTPUTS = ROOT / "outputs"

LANGS = ("en", "ja")  # the first is the default: its pages have no language suffix
DEFAULT_LANG = LANGS[0]
PAGE_SUFFIXES = (".md", ".ipynb")


def _name(page: str | Path) -> str:
    return PurePosixPath(Path(page).as_posix()).name


def lang_of(page: str | Path) -> str:
    """"recipes/x.ja.md" -> "ja"; "recipes/x.md" -> "en"."""
    parts = _name(page).split(".")
    return parts[-2] if len(parts) > 2 and parts[-2] in LANGS[1:] else DEFAULT_LANG


def page_key(page: str | Path) -> str:
    """The page whatever its language, relative to docs/: "recipes/x.ja.md" -> "recipes/x.md"."""
    path = Path(page)
    rel = (path.relative_to(DOCS) if path.is_absolute() else path).as_posix()
    return in_lang(rel, DEFAULT_LANG)


def _name_in(name: str, lang: str) -> str:
    parts = name.split(".")
    if len(parts) > 2 and parts[-2] in LANGS[1:]:
        del parts[-2]
    if lang != DEFAULT_LANG:
        parts.insert(len(parts) - 1, lang)
    return ".".join(parts)


def in_lang(page: str | Path, lang: str):
    """The page in another language, beside it: in_lang("recipes/x.md", "ja") ->
    "recipes/x.ja.md" (a Path in, a Path out)."""
    if isinstance(page, Path):
        return page.with_name(_name_in(page.name, lang))
    folder, _, name = page.rpartition("/")
    return (folder + "/" if folder else "") + _name_in(name, lang)


def twin(page: str | Path):
    """The same page in the other language."""
    return in_lang(page, LANGS[1] if lang_of(page) == DEFAULT_LANG else DEFAULT_LANG)


def both_languages(page: str) -> list[Path]:
    """The page's files under docs/, English first: both_languages("troubleshooting/errors.md")."""
    return [DOCS / in_lang(page, lang) for lang in LANGS]


def site_path(page: str | Path) -> str:
    """"recipes/x.ja.md" -> "ja/recipes/x/": where the built site serves a page
    (use_directory_urls; the default language at the root)."""
    key = page_key(page)
    rel = re.sub(r"\.(md|ipynb)$", "", key)
    lang = lang_of(page)
    return ("" if lang == DEFAULT_LANG else f"{lang}/") + ("" if rel == "index" else rel + "/")


# An include line: `--8<-- "recipes/x.py:name"` (in a Python file, after a `#`).
INCLUDE = re.compile(r"""^(?P<indent>\s*)(?:#\s*)?-{2,}8<-{2,}\s+["'](?P<target>[^"']+)["']""", re.M)
# A named section of a snippet file: `# --8<-- [start:name]` ... `# --8<-- [end:name]`.
SECTION = re.compile(r"#\s*-{2,}8<-{2,}\s*\[(start|end):(\w+)\]")


def include_line(file: str, section: str | None = None) -> str:
    return f'--8<-- "{file}{":" + section if section else ""}"'


def includes(text: str) -> list[str]:
    """Every include target in a text, in order: ["recipes/x.py:name", ...]."""
    return [m["target"] for m in INCLUDE.finditer(text)]


def split_include(target: str) -> tuple[str, str | None]:
    """"recipes/x.py:name" -> ("recipes/x.py", "name"); a whole file -> (file, None)."""
    file, _, section = target.partition(":")
    return file, section or None


OUTPUT_MARK = "<!--output-->"
OUTPUT_TITLE = {"en": "Output", "ja": "出力"}


def output_path(page: str | Path, section: str) -> str:
    """Where a block's output is stored, relative to the repository:
    output_path("recipes/x.ja.md", "name") -> "outputs/recipes/x/name.txt"."""
    return f"outputs/{page_key(page).removesuffix('.md')}/{section}.txt"


def outputs_command(page: str | Path) -> str:
    """The command that writes a page's outputs."""
    return f"python scripts/outputs.py {page_key(page)}"


CACHE = ROOT / ".cache" / "sitebuild"  # what the build can reuse; ignored by git, `make clean`


def write_cached(path: Path, text: str) -> None:
    """Write a cache entry whole or not at all (builds and test workers share the cache)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)

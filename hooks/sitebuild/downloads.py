"""Serves every snippet file at downloads/<section>/<file>.py, byte for byte the file the tests
run, so that each page can offer its whole recipe as one script."""

from __future__ import annotations

import re
from pathlib import Path

from sitebuild.facts import facts
from sitebuild.layout import SNIPPETS, includes, lang_of, split_include


def snippet_downloads(snippets: Path) -> dict[str, Path]:
    """{site path: snippet file} for every snippet file: "downloads/recipes/x.py" -> file."""
    return {f"downloads/{p.relative_to(snippets).as_posix()}": p
            for p in sorted(snippets.rglob("*.py")) if "__pycache__" not in p.parts}


IMPORT = re.compile(r"^\s*(?:from (\w+) import|import (\w+))", re.M)


def imported_snippets(files: list[str]) -> list[str]:
    """Other snippet files that these import (a script needs them beside it to run)."""
    by_module = {p.stem: p.relative_to(SNIPPETS).as_posix() for p in SNIPPETS.rglob("*.py")}
    out = []
    for f in files:
        for m in IMPORT.finditer((SNIPPETS / f).read_text(encoding="utf-8")):
            name = by_module.get(m[1] or m[2])
            if name and name not in out:
                out.append(name)
    return out


BOX = {
    "en": ('!!! tip "The whole recipe as one script"\n\n'
           "    {links}: save {them} in one folder and run `python {main}` (PyTorch {torch_minor}; "
           "blocks that need a GPU are skipped without one).\n"),
    "ja": ('!!! tip "レシピ全体を 1 つのスクリプトで"\n\n'
           "    {links}：同じフォルダに保存し、`python {main}` で実行します（PyTorch {torch_minor}。"
           "GPU が必要なブロックは、GPU がなければ飛ばします）。\n"),
}


def download_box(markdown: str, page_uri: str) -> str:
    """The page with a download box after its first paragraph, naming every snippet file it
    embeds; the command runs the first one (after the running example other files import);
    unchanged if it embeds none."""
    files = list(dict.fromkeys(f for f, _ in map(split_include, includes(markdown)) if f.endswith(".py")))
    if not files:
        return markdown
    files += [f for f in imported_snippets(files) if f not in files]
    lang = lang_of(page_uri)
    up = "../" * page_uri.count("/")
    links = ", ".join(f"[`{Path(f).name}`]({up}downloads/{f})" for f in files)
    them = "it" if len(files) == 1 else "them"
    main = next(Path(f).name for f in files if not f.endswith("running_example.py"))
    box = BOX[lang].format(links=links, them=them, main=main, torch_minor=facts()["torch_minor"])
    lines = markdown.split("\n")
    h1 = next(i for i, line in enumerate(lines) if line.startswith("# "))
    start = next(i for i in range(h1 + 1, len(lines)) if lines[i].strip())
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[:end] + ["", box] + lines[end:])

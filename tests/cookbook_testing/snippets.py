"""The snippet files: their named sections, and the namespace a test gets from them."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

from sitebuild.layout import SECTION, SNIPPETS


def snippet_files() -> list[Path]:
    return sorted(p for p in SNIPPETS.rglob("*.py") if "__pycache__" not in p.parts)


def snippet_sections(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (start line index, end line index) of the named sections of a snippet file."""
    starts, out = {}, {}
    for i, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        m = SECTION.search(line)
        if m and m[1] == "start":
            starts[m[2]] = i
        elif m:
            out[m[2]] = (starts.pop(m[2]), i)
    return out


def section_source(path: Path, *names: str) -> str:
    """The code of named sections of a snippet file, dedented as the page shows it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    sections = snippet_sections(path)
    missing = [n for n in names if n not in sections]
    if missing:
        raise KeyError(f"{path}: no section {missing}; it has {sorted(sections)}")
    return "\n\n".join(textwrap.dedent("\n".join(lines[sections[n][0] + 1:sections[n][1]]))
                       for n in names)


def sections_namespace(snippet: str | Path, *names: str, into: dict | None = None,
                       module: str | None = None) -> dict:
    """The names that sections of a snippet file define, as the page's reader gets them:
    sections_namespace("changes/optimizer.py", "switch_optimizer", "position").

    The sections run in the order given, in `into` (a new namespace by default, whose
    `__name__` is `module` or a name made from the file: never "__main__", so a section's
    demonstration under `if __name__ == "__main__"` does not run); tracebacks name the file."""
    path = snippet if isinstance(snippet, Path) else SNIPPETS / snippet
    namespace = into if into is not None else {}
    namespace.setdefault("__name__", module or "sections_of_" + path.stem)
    exec(compile(section_source(path, *names), str(path), "exec"), namespace)
    return namespace


def load_module(path: Path, name: str):
    """Import a file that is not on the path (a script or a snippet) as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""textlint over the Japanese pages and the Japanese notebooks' Markdown cells.

The style sheet is `.textlintrc.json` (every rule that differs from the presets says why in
`.textlintrc.notes.md`); the term dictionary is generated from glossary.ja.md, the single
source of the project's terms, into build/textlint/prh.yml before each run.

    python scripts/lint_ja.py                 # every Japanese page; exit 1 on any finding
    python scripts/lint_ja.py docs/a/b.ja.md  # some files

Prints one finding a line: file:line:column: rule: message. Needs `npm ci` (make does it).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GLOSSARY = ROOT / "glossary.ja.md"
WORK = ROOT / "build" / "textlint"
TEXTLINT = ROOT / "node_modules" / ".bin" / "textlint"
# Words that contain a rejected form without being it (ダウンロード is not ロード;
# 平均二乗誤差, mean squared error, is a set term, written so in textbooks and JIS Z 8101).
NOT_REJECTED = {"ロード": ("ダウンロード", "アップロード", "ワークロード", "ペイロード"),
                "素の": ("要素の",), "他の": ("その他の",), "二乗": ("平均二乗誤差",)}


def glossary_rows() -> list[dict[str, str]]:
    """The glossary's table: English, 日本語 (the term), 使わない表記 (rejected forms), note."""
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").split("\n"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and line.startswith("|") and cells[0] != "English" \
                and not set(cells[0]) <= {"-", " "}:
            rows.append(dict(zip(("english", "term", "rejected", "note"), cells)))
    return rows


def rejected_forms() -> dict[str, str]:
    """{rejected form: the glossary's term}."""
    return {form.strip(): row["term"] for row in glossary_rows()
            for form in row["rejected"].split(",") if form.strip()}


def glossed_forms() -> list[str]:
    """The first-use forms with a gloss in brackets, such as プリエンプション（強制停止）:
    a page writes each of them once, and the bare term after that."""
    forms = set()
    for row in glossary_rows():
        cells = [row["term"], *re.findall(r"初出で「([^」]+)」", row["note"])]
        forms |= {c for c in cells if re.fullmatch(r"[^（）]+（[^）]+）", c)}
    return sorted(forms)


def _prh_pattern(form: str) -> str:
    """A prh pattern for `form`: the plain string, or a regex that skips the longer words
    in NOT_REJECTED that contain it (a look-behind on what precedes it in the word, or a
    look-ahead on what follows where the word starts with it)."""
    guards = []
    for word in NOT_REJECTED.get(form, ()):
        head, _, tail = word.partition(form)
        guards.append(f"(?<!{re.escape(head)})" if head else f"(?!{re.escape(tail)})")
    if not guards:
        return form
    return "/" + "".join(guards) + re.escape(form) + "/"


def write_prh() -> Path:
    """build/textlint/prh.yml from the glossary: each rejected form -> its term."""
    WORK.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "rules:"]
    for form, term in rejected_forms().items():
        expected = re.sub(r"（.*?）", "", term).strip()  # the gloss is written once, by hand
        lines += [f"  - expected: {json.dumps(expected, ensure_ascii=False)}",
                  f"    patterns: [{json.dumps(_prh_pattern(form), ensure_ascii=False)}]"]
    path = WORK / "prh.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


ADMONITION = re.compile(r"^(?:!!!|\?\?\?)\+? *[a-z]+")


def unindent_admonitions(text: str) -> str:
    """Material's admonitions (`!!! note "title"` and their body indented by four spaces)
    with the body moved to the margin: Markdown would read it as an indented code block,
    which textlint skips. Line numbers stay the same."""
    out, inside = [], False
    for line in text.split("\n"):
        if ADMONITION.match(line):
            inside = True
        elif inside and line.strip() and not line.startswith("    "):
            inside = False
        out.append(line[4:] if inside and line.startswith("    ") else line)
    return "\n".join(out)


def _write_if_changed(path: Path, text: str) -> None:
    """textlint's cache knows a file by its modification time: rewrite only what changed."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def page_markdown(page: Path) -> Path:
    """The page as textlint should read it (see unindent_admonitions), in build/textlint."""
    name = page.resolve().relative_to(DOCS) if page.resolve().is_relative_to(DOCS) else page.name
    out = WORK / "pages" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out, unindent_admonitions(page.read_text(encoding="utf-8")))
    return out


def notebook_markdown(notebook: Path) -> Path:
    """The notebook's Markdown cells as one file, cells separated by a comment that names
    the cell, so that a finding can be traced back."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    parts = [f"<!-- cell {i} -->\n\n" + unindent_admonitions("".join(c["source"])) for i, c in enumerate(cells)
             if c["cell_type"] == "markdown"]
    out = WORK / "notebooks" / (notebook.stem + ".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out, "\n\n".join(parts) + "\n")
    return out


def japanese_files() -> list[Path]:
    pages = sorted(p for p in DOCS.rglob("*.ja.md"))
    notebooks = sorted(p for p in DOCS.rglob("*.ja.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return pages + notebooks


def lint(files: list[Path], cache: bool = True) -> list[str]:
    """The findings, as file:line:column: rule: message (paths relative to the repository)."""
    if not TEXTLINT.exists():
        raise SystemExit(f"{TEXTLINT.relative_to(ROOT)} is missing: run `npm ci` "
                         "(or `make node_modules/.installed`)")
    write_prh()
    shown = {}
    for f in files:
        target = notebook_markdown(f) if f.suffix == ".ipynb" else page_markdown(f)
        shown[str(target.resolve())] = f
    # The cache skips files unchanged since a run that found nothing in them (the key
    # includes the configuration); it lives in the ignored .cache/.
    # The cache knows the configuration but not the dictionary: one cache per glossary.
    key = hashlib.sha256(GLOSSARY.read_bytes()).hexdigest()[:12]
    cache = ["--cache", "--cache-location", str(ROOT / ".cache" / "textlint" / key)] if cache else []
    result = subprocess.run([str(TEXTLINT), "--format", "json", *cache, *shown], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise SystemExit(f"textlint failed ({result.returncode}):\n{result.stderr}")
    findings = []
    for report in json.loads(result.stdout):
        name = shown.get(report["filePath"], Path(report["filePath"]))
        name = name.relative_to(ROOT) if name.is_relative_to(ROOT) else name
        for m in report["messages"]:
            message = " ".join(m["message"].split())
            findings.append(f"{name}:{m['line']}:{m['column']}: {m['ruleId']}: {message}")
    return findings


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] or japanese_files()
    findings = lint(files)
    print("\n".join(findings) if findings else f"textlint: {len(files)} files, no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Which Japanese pages translate an older version of their English page.

Each Japanese page records the English text it was last reviewed against: `translated_from`,
a hash of the English file, in its front matter (notebooks: in their metadata).
tests/harness/test_japanese.py fails when the English page changed since.

    python scripts/translations.py list                      # outdated Japanese pages
    python scripts/translations.py diff recipes/x.md         # what changed in the English
    python scripts/translations.py reviewed recipes/x.md ... # after updating the Japanese
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hooks"))
from sitebuild.layout import DEFAULT_LANG, DOCS, ROOT, lang_of, twin  # noqa: E402,F401

FRONT_KEY = re.compile(r"^translated_from: *(\w*) *$", re.M)


def english_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def pairs() -> list[tuple[Path, Path]]:
    pages = sorted(p for p in [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
                   if lang_of(p) == DEFAULT_LANG and ".ipynb_checkpoints" not in p.parts)
    return [(p, twin(p)) for p in pages if twin(p).exists()]


def recorded(japanese: Path) -> str | None:
    text = japanese.read_text(encoding="utf-8")
    if japanese.suffix == ".ipynb":
        return json.loads(text)["metadata"].get("translated_from")
    m = FRONT_KEY.search(text.split("\n---", 1)[0]) if text.startswith("---") else None
    return m[1] if m else None


def outdated() -> list[tuple[Path, Path]]:
    return [(en, ja) for en, ja in pairs()
            if recorded(ja) != english_hash(en.read_text(encoding="utf-8"))]


def mark_reviewed(english: Path) -> None:
    ja, value = twin(english), english_hash(english.read_text(encoding="utf-8"))
    text = ja.read_text(encoding="utf-8")
    if ja.suffix == ".ipynb":
        nb = json.loads(text)
        nb["metadata"]["translated_from"] = value
        ja.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    head, sep, body = text[4:].partition("\n---\n")  # after the opening "---\n"
    if not text.startswith("---\n") or not sep:
        raise SystemExit(f"{ja.relative_to(ROOT)}: no front matter to record the review in")
    head = FRONT_KEY.sub("", head).rstrip("\n") + f"\ntranslated_from: {value}"
    ja.write_text(f"---\n{head}\n---\n{body}", encoding="utf-8")


def english_diff(english: Path) -> str:
    """The English page's changes since the version the Japanese was reviewed against."""
    rel = english.relative_to(ROOT).as_posix()
    want = recorded(twin(english))
    commits = subprocess.run(["git", "log", "--format=%H", "--", rel], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for commit in commits:
        old = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, capture_output=True,
                             text=True).stdout
        if english_hash(old) == want:
            return subprocess.run(["git", "diff", commit, "--", rel], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout
    return f"(no commit of {rel} matches translated_from {want}: compare by hand)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "diff", "reviewed"])
    parser.add_argument("pages", nargs="*", help="English pages, relative to docs/")
    args = parser.parse_args(argv)
    if args.command == "list":
        stale = outdated()
        for en, ja in stale:
            print(f"{ja.relative_to(ROOT)}: its English page changed since the last review")
        return 1 if stale else 0
    for page in args.pages:
        english = DOCS / page
        if lang_of(english) != DEFAULT_LANG or not english.exists():
            raise SystemExit(f"{page}: not an English page under docs/: name the English page "
                             f"(recipes/x.md), whose Japanese twin was reviewed")
        if args.command == "diff":
            print(english_diff(english))
        else:
            mark_reviewed(english)
            print(f"{twin(english).relative_to(ROOT)}: reviewed against the current English")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

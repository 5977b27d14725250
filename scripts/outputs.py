"""Run the pages' blocks and write what each printed to outputs/ (`make outputs`).

Every output block on the site is a file outputs/<page>/<section>.txt that the site build
inserts where both languages say `<!--output-->` after the block; nobody types one. This runs
each English page's blocks in order, as the tests do, and writes the files that are missing
or whose output changed. Blocks that cannot run here (CUDA on a CPU machine) keep their file.
A block that fails stops its page and writes nothing for it.

    python scripts/outputs.py                      # every page
    python scripts/outputs.py --check              # only report what differs (exit 1)
    python scripts/outputs.py recipes/exact-resume.md ...
    python scripts/outputs.py --record-verified recipes/new-page.md   # (make new-page)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hooks"), str(ROOT / "snippets" / "lib")]  # as pytest.ini

from cookbook_testing.blocks import normalise_output, page_blocks  # noqa: E402
from cookbook_testing.markdown import markdown_pages  # noqa: E402
from cookbook_testing.runner import PageSession, failed  # noqa: E402
from cookbook_testing.verified import Outcome, record  # noqa: E402
from sitebuild.layout import DOCS, lang_of, page_key  # noqa: E402


def page_outputs(path: Path, outcome: Outcome | None = None) -> tuple[dict[str, str], list[str]]:
    """{output file: what its block printed} for one page, and the blocks that did not run;
    counts them in `outcome` if given."""
    blocks = page_blocks(path)
    kept = [b.id for b in blocks if b.skip_reason and b.output_file]
    written = {}
    with tempfile.TemporaryDirectory() as cwd:
        for block, shown, error in PageSession(blocks, Path(cwd)).run():
            if failed(block, error):
                raise SystemExit(f"{block.id} failed: {type(error).__name__}: {error}")
            if block.output_file:
                written[block.output_file] = normalise_output(shown) + "\n"
            if outcome is not None:
                outcome.add("passed", block.cuda)
    if outcome is not None:
        for block in blocks:
            if block.skip_reason:
                outcome.add("skipped", block.cuda)
    return written, kept


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="*", help="English pages, relative to docs/")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a difference")
    parser.add_argument("--record-verified", action="store_true",
                        help="also record the pages as verified (outputs/verified/): their blocks "
                             "all ran and their outputs are now what they print")
    args = parser.parse_args(argv)
    outcomes: dict[str, Outcome] = {}
    paths = [DOCS / p for p in args.pages] or [p for p in markdown_pages() if lang_of(p) == "en"]
    differ = 0
    for path in paths:
        outcome = outcomes.setdefault(page_key(path), Outcome())
        outputs, kept = page_outputs(path, outcome)
        for name, text in outputs.items():
            file = ROOT / name
            old = file.read_text(encoding="utf-8") if file.exists() else None
            if old == text:
                continue
            differ += 1
            print(f"{'differs' if args.check else 'written'}: {name}")
            if args.check:
                print("  stored: " + (old or "(none)").rstrip().replace("\n", "\n          "))
                print("  now:    " + text.rstrip().replace("\n", "\n          "))
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(text, encoding="utf-8")
        for block_id in kept:
            print(f"kept (not run here: needs CUDA or is skipped): {block_id}")
    print(f"{differ} output file(s) {'differ' if args.check else 'rewritten'}")
    if args.record_verified and not args.check:
        record(outcomes, gpu=False)
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

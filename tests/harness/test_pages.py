"""Run every Python block of every page, after snippet expansion, as a reader would.

The blocks of a page run in order in one namespace and one working directory, like a
reader pasting them into one Python session; selecting one block (`-k`) runs the earlier
blocks of its page first. Printed output is compared with the output block shown under
the code (the page says `<!--output-->` after the fence), stored once in outputs/ at the
path its page and section give, and written by `make outputs`. A missing output file fails
that block's test, naming the command that writes it; a page that cannot be read fails its
own test, not the collection of every page. A block marked `raises(Exc)` must raise exactly
that exception, with the message shown under it. English and Japanese pages whose expanded
blocks are identical (test_parity.py requires it) run once.
"""

from __future__ import annotations

import re

import pytest

from cookbook_testing.blocks import Block, normalise_output, page_blocks
from cookbook_testing.markdown import markdown_pages, python_fence_count
from cookbook_testing.runner import PageRunner, PageSession, failed, run_block
from sitebuild.layout import DOCS, lang_of, outputs_command, page_key

UNREADABLE: dict[str, str] = {}  # page -> why its blocks could not be read


def _collect() -> list[Block]:
    by_page: dict[str, list[tuple[str, list[Block]]]] = {}
    for path in markdown_pages():
        try:
            blocks = page_blocks(path)
        except Exception as error:  # noqa: BLE001 - reported by that page's test below
            UNREADABLE[path.relative_to(DOCS).as_posix()] = f"{type(error).__name__}: {error}"
            continue
        by_page.setdefault(page_key(path), []).append((lang_of(path), blocks))
    out = []
    for key, variants in by_page.items():
        first = variants[0][1]
        if all(_signature(b) == _signature(first) for _, b in variants):
            out += first
            continue
        for lang, blocks in variants:  # test_parity fails too; run each language on its own
            for b in blocks:
                b.page = f"{key}[{lang}]"
                out.append(b)
    return out


def _signature(blocks: list[Block]):
    return [(b.code, b.output_file, [str(m) for m in b.marks]) for b in blocks]


BLOCKS = _collect()


@pytest.fixture(scope="session")
def runner(tmp_path_factory) -> PageRunner:
    """Owns the pages' sessions for this test process (one per xdist worker: --dist loadgroup
    keeps a page's blocks on one worker, in order)."""
    return PageRunner(BLOCKS, lambda: tmp_path_factory.mktemp("page"))


@pytest.fixture
def session(block, runner) -> PageSession:
    return runner.session_for(block)


def _param(b: Block):
    # Under xdist (--dist loadgroup) a page's blocks share one worker, in order
    # (a group name with "]" would be ignored).
    group = pytest.mark.xdist_group(re.sub(r"\W", "_", b.page))
    # A page whose languages differ ("page.md[ja]") is not verified as a page.
    verifies = [pytest.mark.verifies(b.page)] if b.page.endswith(".md") else []
    return pytest.param(b, marks=[*b.marks, group, pytest.mark.page_block(b.id), *verifies], id=b.id)


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block(block: Block, session: PageSession):
    if session.failed_at is not None:
        pytest.fail(f"not run: {session.failed_at} failed before it")
    shown, error = run_block(block, session.namespace, session.cwd)
    expected_exc = block.raises
    expected = block.stored_output() if block.output_file else None
    if expected_exc is not None:
        assert block.output_file is not None, "a `raises` block must show the message (<!--output-->)"
        if not isinstance(error, expected_exc):
            session.failed_at = block.id
            if error is not None:
                raise error
            pytest.fail(f"the block did not raise {expected_exc.__name__}")
    elif failed(block, error):
        session.failed_at = block.id
        raise error

    if block.output_file is not None:
        if expected is None:
            pytest.fail(f"{block.id}: its output {block.output_file} is not written yet: run "
                        f"`{outputs_command(block.page)}` and review it")
        assert normalise_output(shown) == normalise_output(expected), (
            f"{block.id}: the output differs from {block.output_file}. If the new output is "
            f"right on every machine, run `{outputs_command(block.page)}` and review the diff")


@pytest.mark.parametrize("path", markdown_pages(), ids=lambda p: p.relative_to(p.parents[1]).as_posix())
def test_every_python_block_is_accounted_for(path):
    """Every Python fence (python, py, python title=...) is collected: none is ignored; its
    marks are known ones (page_blocks raises otherwise, and the page fails here); no output
    is typed on the page: an output mark names the stored file of its block."""
    rel = path.relative_to(DOCS).as_posix()
    assert rel not in UNREADABLE, UNREADABLE.get(rel)
    blocks = page_blocks(path)
    assert len(blocks) == python_fence_count(path), (
        "a Python fence is not collected (is an output block written as ```python?)")
    for b in blocks:
        assert b.section, f"line {b.lineno}: a Python block embeds one snippet section"


def test_one_block_selected_alone_runs_its_page_first(tmp_path):
    """`pytest "tests/harness/test_pages.py::test_block[<page>::<section>]"` must not fail with a
    NameError: the session runs the earlier blocks of the page first."""
    runner = PageRunner(BLOCKS, lambda: tmp_path)
    page = runner.by_page["concepts/checkpoint-cost.md"]
    last = page[-1]
    fresh = runner.session_for(last)
    assert fresh.failed_at is None and fresh.done == len(page)
    shown, error = run_block(last, fresh.namespace, fresh.cwd)  # uses names the earlier ones made
    assert error is None

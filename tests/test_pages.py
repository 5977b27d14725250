"""Run every Python block of every page, after snippet expansion, as a reader would.

The blocks of a page run in order in one namespace and one working directory, like a
reader pasting them into one Python session. Printed output is compared with the output
block shown under the code; a block marked `raises(Exc)` must raise exactly that
exception, with the message shown under it. English and Japanese pages whose expanded
blocks are identical (test_parity.py requires it) run once.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import traceback

import pytest

from pages import Block, base_key, markdown_pages, page_blocks, python_fence_count


def _collect() -> list[Block]:
    by_page: dict[str, list[tuple[str, list[Block]]]] = {}
    for path in markdown_pages():
        by_page.setdefault(base_key(path), []).append(
            ("ja" if ".ja." in path.name else "en", page_blocks(path)))
    out = []
    for key, variants in by_page.items():
        first = variants[0][1]
        same = all(_signature(b) == _signature(first) for _, b in variants)
        groups = [("+".join(lang for lang, _ in variants), first)] if same else variants
        for langs, blocks in groups:
            for b in blocks:
                b.page = f"{key}[{langs}]"
                out.append(b)
    return out


def _signature(blocks: list[Block]):
    return [(b.code, b.expected_output, [str(m) for m in b.marks]) for b in blocks]


BLOCKS = _collect()


class _PageSession:
    """Namespace, working directory and failure state shared by the blocks of one page."""

    def __init__(self, cwd):
        self.namespace = {"__name__": "__main__"}
        self.cwd = cwd
        self.failed_at: int | None = None


_sessions: dict[str, _PageSession] = {}


@pytest.fixture
def session(block, tmp_path_factory):
    if block.page not in _sessions:
        _sessions[block.page] = _PageSession(tmp_path_factory.mktemp("page"))
    return _sessions[block.page]


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _param(b: Block):
    # Under xdist (--dist loadgroup) a page's blocks share one worker, in order
    # (a group name with "]" would be ignored).
    group = pytest.mark.xdist_group(re.sub(r"\W", "_", b.page))
    return pytest.param(b, marks=[*b.marks, group], id=f"{b.page}:{b.lineno}")


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block(block: Block, session: _PageSession):
    if session.failed_at is not None:
        pytest.fail(f"not run: block at line {session.failed_at} of this page failed")
    stdout = io.StringIO()
    error = None
    old = os.getcwd()
    os.chdir(session.cwd)
    try:
        with contextlib.redirect_stdout(stdout):
            exec(compile(block.code, f"{block.page}:{block.lineno}", "exec"), session.namespace)
    except BaseException as exc:  # noqa: BLE001 - compared with what the page promises below
        error = exc
    finally:
        os.chdir(old)

    expected_exc = block.raises
    if expected_exc is not None:
        assert block.expected_output is not None, "a `raises` block must show the message"
        if not isinstance(error, expected_exc):
            session.failed_at = block.lineno
            if error is not None:
                raise error
            pytest.fail(f"the block did not raise {expected_exc.__name__}")
        shown = stdout.getvalue() + "".join(traceback.format_exception_only(type(error), error))
    else:
        if error is not None:
            session.failed_at = block.lineno
            raise error
        shown = stdout.getvalue()

    if block.expected_output is not None:
        assert _normalise(shown) == _normalise(block.expected_output)


@pytest.mark.parametrize("path", markdown_pages(), ids=lambda p: p.relative_to(p.parents[1]).as_posix())
def test_every_python_block_is_accounted_for(path):
    """Every Python fence (python, py, python title=...) is collected: none is ignored."""
    blocks = page_blocks(path)
    assert len(blocks) == python_fence_count(path), (
        "a Python fence is not collected (is an output block written as ```python?)")
    for b in blocks:
        for m in b.marks:
            if m.name in ("skip", "skipif", "xfail"):
                assert m.kwargs.get("reason"), f"line {b.lineno}: {m.name} needs reason=..."

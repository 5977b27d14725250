"""Running a page's blocks as a reader pasting them into one Python session would: in page
order, one namespace and one working directory per page. The runner owns the sessions, so
the tests (one block per test) and scripts/outputs.py (a page at a time) share one rule."""

from __future__ import annotations

import contextlib
import io
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from cookbook_testing.blocks import Block


def run_block(block: Block, namespace: dict, cwd: Path) -> tuple[str, BaseException | None]:
    """Execute one block as a reader pasting it would: (what it printed, the error it raised).

    For a block marked raises(Exc), what it printed ends with the exception's last line,
    as the page shows it."""
    stdout = io.StringIO()
    error = None
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout):
            exec(compile(block.code, block.id, "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 - the caller compares it with the page
        error = exc
    finally:
        os.chdir(old)
    shown = stdout.getvalue()
    if error is not None and block.raises is not None and isinstance(error, block.raises):
        shown += "".join(traceback.format_exception_only(type(error), error))
    return shown, error


def failed(block: Block, error: BaseException | None) -> bool:
    """An error other than the one the block is marked to raise."""
    return error is not None and not (block.raises and isinstance(error, block.raises))


class PageSession:
    """Namespace, working directory and progress shared by the blocks of one page."""

    def __init__(self, blocks: list[Block], cwd: Path):
        self.blocks = blocks
        self.namespace = {"__name__": "__main__"}
        self.cwd = cwd
        self.done = 0  # blocks of the page run so far, in order
        self.failed_at: str | None = None

    def catch_up(self, block: Block) -> None:
        """Run the page's blocks before `block` that have not run in this session (one block
        selected alone with -k or its node id), so that it finds the names it uses."""
        for earlier in self.blocks[self.done:block.index]:
            if earlier.skip_reason is None and self.failed_at is None:
                _, error = run_block(earlier, self.namespace, self.cwd)
                if failed(earlier, error):
                    self.failed_at = earlier.id
        self.done = max(self.done, block.index + 1)

    def run(self) -> Iterator[tuple[Block, str, BaseException | None]]:
        """Every block that runs here, in order: (block, what it printed, its error); stops
        after the first block that fails."""
        for block in self.blocks[self.done:]:
            self.done = block.index + 1
            if block.skip_reason:
                continue
            shown, error = run_block(block, self.namespace, self.cwd)
            yield block, shown, error
            if failed(block, error):
                self.failed_at = block.id
                return


class PageRunner:
    """One session per page, created on first use in a fresh directory from `new_dir`."""

    def __init__(self, blocks: list[Block], new_dir: Callable[[], Path]):
        self.by_page: dict[str, list[Block]] = {}
        for b in blocks:
            self.by_page.setdefault(b.page, []).append(b)
        self.new_dir = new_dir
        self.sessions: dict[str, PageSession] = {}

    def session_for(self, block: Block) -> PageSession:
        """The session of the block's page, with the blocks before it run."""
        if block.page not in self.sessions:
            self.sessions[block.page] = PageSession(self.by_page[block.page], self.new_dir())
        session = self.sessions[block.page]
        session.catch_up(block)
        return session

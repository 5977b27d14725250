"""What a program that a test starts in a new process (tests/programs/) needs."""

from __future__ import annotations

import os

import pytest

from sitebuild.layout import LIBRARY, ROOT


def program_env() -> dict:
    """The environment for a program in tests/programs: the test helpers, the layout rules and
    the site's library (snippets/lib) importable by name."""
    ours = [str(ROOT / "tests"), str(ROOT / "hooks"), str(LIBRARY)]
    theirs = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # a GPU box's
    return {**os.environ, "PYTHONPATH": os.pathsep.join(ours + theirs)}


def as_user(uid, call):
    """Run `call` in a forked child with another user id (root bypasses file permissions);
    returns what it returned, or the text of the exception it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            os.setgid(uid)
            os.setuid(uid)
            result = repr(call())
        except BaseException as e:  # noqa: BLE001
            result = f"{type(e).__name__}: {e}"
        os.write(write, result.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


needs_root = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0,
    reason="needs root, to mount a small filesystem or to act as another user")

"""What a program that a test starts in a new process (tests/programs/) needs."""

from __future__ import annotations

import os

from sitebuild.layout import LIBRARY, ROOT


def program_env() -> dict:
    """The environment for a program in tests/programs: the test helpers, the layout rules and
    the site's library (snippets/lib) importable by name."""
    ours = [str(ROOT / "tests"), str(ROOT / "hooks"), str(LIBRARY)]
    theirs = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # a GPU box's
    return {**os.environ, "PYTHONPATH": os.pathsep.join(ours + theirs)}

"""A fingerprint of the working tree, to show that a test run wrote no file git tracks or
would pick up (`make test` passes --check-tree: `git status` is the same before and after)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def changed_paths(root: Path) -> dict[str, str] | None:
    """{path: hash of its content, or "deleted"} for every path git reports as changed or
    untracked (not ignored); None outside a git work tree or without git."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                             cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    paths: dict[str, str] = {}
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i].decode("utf-8", "surrogateescape")
        i += 1
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            i += 1  # the original path of a rename follows
        file = root / path
        paths[path] = (hashlib.sha1(file.read_bytes()).hexdigest() if file.is_file()
                       else "deleted" if not file.exists() else "dir")
    return paths


def difference(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose state differs between two fingerprints."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))

"""Fixtures shared by the recipes' tests."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """A really full disk: yields a function that mounts a tmpfs of `size` bytes and returns
    its path (as root; skipped with the reason elsewhere)."""
    mounted = []

    def mount(size):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("needs root to mount a small filesystem (a really full disk)")
    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)

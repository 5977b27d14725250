"""The Makefile's promises: the site builds without torch, every target is documented."""

from __future__ import annotations

import re
import shutil
import subprocess

from cookbook_testing.pages import ROOT


def _dry_run(target: str, tmp_path) -> str:
    """What `make <target>` would run on a fresh clone (no .venv yet)."""
    for name in ("Makefile", "requirements.txt", "requirements-docs.txt", "package.json",
                 "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    return subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout


def test_serve_and_build_install_no_torch(tmp_path):
    docs = (ROOT / "requirements-docs.txt").read_text()
    assert not re.search(r"^torch", docs, re.M)
    for target in ("serve", "build"):
        out = _dry_run(target, tmp_path)
        assert "-r requirements-docs.txt" in out and "-r requirements.txt" not in out, target
    assert "-r requirements.txt" in _dry_run("test", tmp_path)


def test_serve_reloads_on_snippets_and_outputs():
    from cookbook_testing.pages import mkdocs_config
    assert {"snippets", "outputs"} <= set(mkdocs_config()["watch"])


def test_every_target_has_a_help_line():
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", text, re.M)[1].split()
    documented = re.findall(r"^([a-z0-9-]+):.*## ", text, re.M)
    assert sorted(phony) == sorted(documented)

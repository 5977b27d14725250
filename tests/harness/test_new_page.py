"""Adding a page is one command and a fill-in: `make new-page` in a copy of the repository
makes a page pair whose tests and strict build pass with no other edit."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from sitebuild.layout import ROOT

PAGE = "recipes/scaffold-check"


def _copy_of_the_repository(dest):
    """The files git tracks or would pick up (not the ignored ones: .venv, site/, caches)."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _run(cmd, cwd, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


# About 40 s of CPU (a copy, a page run, a pytest session and a strict build): a third of the
# budget of `make test`, so it runs in `make test-scaffold` and in CI's workflow instead.
@pytest.mark.scaffold
@pytest.mark.slow
def test_make_new_page_makes_a_page_that_passes_its_tests(tmp_path):
    repo = tmp_path / "repo"
    _copy_of_the_repository(repo)
    _run(["make", "new-page", f"PAGE={PAGE}", "TITLE=Scaffold check", "TITLE_JA=ひな形の確認",
          f"PYTHON={sys.executable}"], repo)
    for path in ("docs/recipes/scaffold-check.md", "docs/recipes/scaffold-check.ja.md",
                 "snippets/recipes/scaffold_check.py", "outputs/recipes/scaffold-check/example.txt",
                 "tests/recipes/test_scaffold_check.py"):
        assert (repo / path).is_file(), path
    assert "translated_from: " in (repo / "docs/recipes/scaffold-check.ja.md").read_text(encoding="utf-8")
    assert f"- {PAGE}.md" in (repo / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"]({PAGE}.md)" in (repo / "docs/index.ja.md").read_text(encoding="utf-8")
    assert "scaffold-check.md" in (repo / "outputs/verified/cpu.json").read_text(encoding="utf-8")
    assert f"{PAGE}: " in (repo / "tests/site/search_queries.yml").read_text(encoding="utf-8")

    out = _run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                "-W", "ignore::pytest.PytestConfigWarning",
                "tests/harness/test_pages.py", "tests/harness/test_parity.py", "tests/harness/test_snippets.py",
                "tests/harness/test_japanese.py", "tests/recipes/test_scaffold_check.py",
                "-k", "scaffold or index or every_page_exists"], repo)
    assert " passed" in out and "failed" not in out and "error" not in out, out

    _run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q"], repo)
    for lang, title in (("", "Output"), ("ja/", "出力")):
        html = (repo / "site" / lang / PAGE / "index.html").read_text(encoding="utf-8")
        assert f'<span class="filename">{title}</span>' in html and "param_groups" in html
        assert ("最終確認" if lang else "Last verified") in html

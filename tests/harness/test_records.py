"""A test run writes no file git tracks; the verified records are written only on request, and
found by the mark each test carries, not by its name; the run does not depend on the signal
dispositions it inherited."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap

import pytest

from cookbook_testing import tree
from cookbook_testing.pages import ROOT


def _recipe(target: str) -> str:
    """A target's commands, with the Makefile's own variables (`NAME = ...`) filled in."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^([A-Z_]+) :?= (.*)$", text, re.M))
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M)[1]
    return re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m[1], m[0]), recipe)


def test_make_test_records_nothing_and_checks_the_tree():
    for target in ("test", "test-all"):
        assert "--record-verified" not in _recipe(target)
        assert "--check-tree" in _recipe(target)
    assert "--record-verified" in _recipe("verified")


def test_make_test_leaves_out_only_the_slow_tests_and_ci_runs_them_all():
    """The two tiers differ by the `slow` mark alone; what lands has passed every test."""
    assert '-m "not slow and not scaffold"' in _recipe("test")
    assert '-m "not scaffold"' in _recipe("test-all")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test-all$", ci, re.M), ci


def test_the_pytest_cache_lives_in_an_ignored_folder():
    ini = (ROOT / "pytest.ini").read_text(encoding="utf-8")
    assert "no:cacheprovider" not in ini
    cache = re.search(r"^cache_dir = (\S+)", ini, re.M)[1]
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{cache}/v"], cwd=ROOT)
    assert ignored.returncode == 0, f"{cache} is not ignored by git"


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_tree_check_sees_a_rewritten_tracked_file(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text(".cache/\n")
    (tmp_path / "cpu.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    (tmp_path / "draft.md").write_text("being edited before the run\n")
    before = tree.changed_paths(tmp_path)
    assert before is not None and list(before) == ["draft.md"]
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x").write_text("ignored")
    assert tree.difference(before, tree.changed_paths(tmp_path)) == []
    (tmp_path / "cpu.json").write_text('{"a.md": {"date": "2026-12-07"}}\n')
    (tmp_path / "new.txt").write_text("x")
    assert tree.difference(before, tree.changed_paths(tmp_path)) == ["cpu.json", "new.txt"]


def test_page_blocks_carry_their_page_for_the_records():
    """The records find a block's page by its mark, whatever the test is called."""
    import test_pages

    params = [p for m in test_pages.test_block.pytestmark if m.name == "parametrize"
              for p in m.args[1]]
    assert params
    for p in params:
        marks = {m.name: m.args for m in p.marks}
        assert marks["page_block"] == (p.values[0].id,)
        assert marks.get("verifies", (p.values[0].page,)) == (p.values[0].page,)


CHILD = textwrap.dedent("""
    import signal, subprocess, sys
    if sys.argv[1] == "restore":
        from cookbook_testing.signals import restore_default_signals
        restore_default_signals()
    print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    subprocess.run([sys.executable, "-c", "import signal; "
                    "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"])
""")


@pytest.mark.parametrize("restore", [False, True])
def test_a_run_started_as_a_background_job_gets_ctrl_c_back(restore):
    """A shell starts `make test ... &` with SIGINT ignored; what the run starts inherits it
    unless the run restores the default (tests/conftest.py does, in every process)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, "restore" if restore else "keep"],
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT / "tests"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(restore)] * 2


class _Item:
    def __init__(self, nodeid, group=None, slow=False):
        self.nodeid, self.marks = nodeid, {}
        if group:
            self.marks["xdist_group"] = pytest.mark.xdist_group(group).mark
        if slow:
            self.marks["slow"] = pytest.mark.slow.mark

    def get_closest_marker(self, name):
        return self.marks.get(name)


def test_slow_tests_then_the_longest_groups_of_the_last_run_start_first():
    """No list of names: the `slow` mark, then the durations the pytest cache kept. The
    tests of a module stay together: a module-scoped fixture is built once per worker."""
    from cookbook_testing.ordering import start_order

    items = [_Item("t.py::a"), _Item("p.py::b1", "page_b"), _Item("u.py::e"), _Item("t.py::c"),
             _Item("p.py::b2", "page_b"), _Item("s.py::d", slow=True), _Item("u.py::f")]
    last = {"page_b": 30.0, "t.py": 5.0}
    items.sort(key=lambda i: start_order(i, last))
    assert [i.nodeid for i in items] == ["s.py::d", "p.py::b1", "p.py::b2", "t.py::a", "t.py::c",
                                         "u.py::e", "u.py::f"]
    assert "LONG_FIRST" not in (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")

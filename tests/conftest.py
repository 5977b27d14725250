"""Markers, the CUDA gate and the block accounting shared by every test."""

from __future__ import annotations

import os

import pytest

from cookbook_testing import tree, verified
from cookbook_testing.ordering import DURATIONS, group_of, start_order
from cookbook_testing.devices import cuda_available
from cookbook_testing.signals import restore_default_signals

CUDA_REASON = "needs CUDA: runs in `make test-gpu`"
# The one rule of the two tiers (the Makefile selects by it).
SLOW = ("slow: starts new interpreters, notebook kernels or the browser (seconds apiece); "
        "`make test` leaves it out, `make test-all` and CI run it, first")


def pytest_addoption(parser):
    parser.addoption("--gpu", action="store_true",
                     help="GPU run: CUDA must be present and no CUDA-marked test may be skipped")
    parser.addoption("--record-verified", action="store_true",
                     help="record in outputs/verified/ which pages' blocks passed, with what "
                          "(`make verified`; a plain run writes no tracked file)")
    parser.addoption("--check-tree", action="store_true",
                     help="fail if the run changed what `git status` shows (`make test`)")


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU; skipped on CPU, required by --gpu")
    config.addinivalue_line("markers", "raises(exc): the page block must raise exc; "
                                       "its expected output is the exception's last line")
    config.addinivalue_line("markers", "xdist_group(name): run with the others of its group")
    config.addinivalue_line("markers", "scaffold: runs `make new-page` in a copy of the repository "
                                       "(make test-scaffold)")
    config.addinivalue_line("markers", SLOW)
    config.addinivalue_line("markers", "page_block(id): a page block, counted in the summary")
    config.addinivalue_line("markers", "verifies(page): passing counts towards the page's "
                                       "verified record (outputs/verified/)")
    restore_default_signals()  # in the main process and in each xdist worker
    global _config
    _config = config
    config.stash[_skipped_cuda] = []
    config.stash[_counts] = {"executed": 0, "cuda": 0, "skipped": 0}
    config.stash[_outcomes] = {}
    config.stash[_durations] = {}


_config = None
_skipped_cuda = pytest.StashKey[list]()
_counts = pytest.StashKey[dict]()
_tree_changed = pytest.StashKey[list]()
_durations = pytest.StashKey[dict]()  # group -> seconds in this run
_outcomes = pytest.StashKey[dict]()  # page -> {"passed", "cuda", "cuda_skipped", "failed"}


def pytest_collection_modifyitems(config, items):
    last = config.cache.get(DURATIONS, {}) if getattr(config, "cache", None) else {}
    items.sort(key=lambda item: start_order(item, last))  # stable: a page's blocks stay in order
    for item in items:  # reports carry them to the main process, under xdist too
        item.user_properties.append(("group", group_of(item)))
        for name, key in (("page_block", "block"), ("verifies", "verifies")):
            mark = item.get_closest_marker(name)
            if mark:
                item.user_properties.append((key, mark.args[0]))
    if config.getoption("--gpu"):
        if not cuda_available():
            raise pytest.UsageError("--gpu: torch.cuda.is_available() is False on this machine")
        _select_gpu_work(config, items)
        return
    if cuda_available():
        return  # a GPU is here: run the CUDA tests too
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(pytest.mark.skip(reason=CUDA_REASON))


def _select_gpu_work(config, items):
    """A GPU run (which may use another torch than the pin) runs what needs the GPU: every
    cuda-marked test, and all the blocks of each page that has a cuda block, in order."""

    def page(item):
        block = getattr(item, "callspec", None) and item.callspec.params.get("block")
        return getattr(block, "page", None)

    cuda_pages = {page(i) for i in items if page(i) and i.get_closest_marker("cuda")}
    keep = [i for i in items if i.get_closest_marker("cuda") or (page(i) in cuda_pages and page(i))]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def pytest_runtest_logreport(report):
    """Count page blocks and catch skipped CUDA tests; runs in the main process under xdist."""
    config = _config
    durations = config.stash[_durations]  # setup and teardown too: module fixtures cost
    group = dict(report.user_properties).get("group", report.nodeid)
    durations[group] = durations.get(group, 0.0) + report.duration
    props = dict(report.user_properties)
    is_block = "block" in props  # a page block (tests/harness/test_pages.py gives its id)
    cuda = "cuda" in report.keywords
    if report.skipped and report.when in ("setup", "call"):
        if cuda:
            config.stash[_skipped_cuda].append(report.nodeid)
        if is_block:
            config.stash[_counts]["cuda" if cuda else "skipped"] += 1
    elif report.when == "call" and is_block:
        config.stash[_counts]["executed"] += 1
    page = props.get("verifies")
    if page and (report.when == "call" or report.outcome != "passed"):
        o = config.stash[_outcomes].setdefault(page, verified.Outcome())
        o.add(report.outcome, cuda)


def pytest_sessionstart(session):
    if session.config.getoption("--check-tree") and not hasattr(session.config, "workerinput"):
        from cookbook_testing.pages import ROOT
        session.config.stash[_tree] = tree.changed_paths(ROOT)


_tree = pytest.StashKey[dict]()


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if getattr(config, "cache", None) and not hasattr(config, "workerinput"):
        known = config.cache.get(DURATIONS, {})  # a partial run updates what it ran
        config.cache.set(DURATIONS, {**known, **{k: round(v, 2) for k, v in config.stash[_durations].items()}})
    before = config.stash.get(_tree, None)
    if before is not None:
        from cookbook_testing.pages import ROOT
        changed = tree.difference(before, tree.changed_paths(ROOT) or {})
        if config.getoption("--record-verified"):  # asked for: the records may change
            changed = [p for p in changed if not p.startswith(f"{verified.VERIFIED_DIR}/")]
        if changed:
            config.stash[_tree_changed] = changed
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if config.getoption("--gpu") and config.stash[_skipped_cuda]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if config.getoption("--record-verified") and not hasattr(config, "workerinput"):
        verified.record(config.stash[_outcomes], gpu=config.getoption("--gpu"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if "not slow" in (config.option.markexpr or ""):
        terminalreporter.write_line(
            "not run: the tests marked slow (they start interpreters, notebook kernels or the "
            "browser); `make test-all` runs every test, as CI does")
    c = config.stash[_counts]
    if sum(c.values()):
        terminalreporter.write_sep("-", "page blocks")
        terminalreporter.write_line(
            f"page blocks: {c['executed']} executed, {c['cuda']} CUDA-only not run here, "
            f"{c['skipped']} skipped with a reason")
    changed = config.stash.get(_tree_changed, [])
    if changed:
        terminalreporter.write_sep("!", "the run changed files that git sees (--check-tree)")
        for path in changed:
            terminalreporter.write_line(f"  {path}")
    skipped = config.stash[_skipped_cuda]
    if config.getoption("--gpu") and skipped:
        terminalreporter.write_sep("!", "CUDA-marked tests were skipped in a GPU run")
        for nodeid in skipped:
            terminalreporter.write_line(f"  {nodeid}")


@pytest.fixture(autouse=True)
def _nothing_written_into_the_repository():
    """A recipe that writes relative paths must run in a temporary directory: a test that
    leaves a file at the repository's root fails (and the file would end up committed).
    What .gitignore names at the root (the build's cache, site/, build/) may appear."""
    from cookbook_testing.pages import ROOT

    before = set(os.listdir(ROOT))
    yield
    new = set(os.listdir(ROOT)) - before - _ignored_at_root(ROOT)
    assert not new, f"the test wrote {sorted(new)} into {ROOT}"


def _ignored_at_root(root) -> set[str]:
    lines = (root / ".gitignore").read_text(encoding="utf-8").split("\n")
    return {line.strip("/") for line in lines if line.startswith("/")} | {"__pycache__"}


@pytest.fixture(autouse=True)
def _torch_thread_count_restored():
    """A page block may set torch's thread count, as its reader would (changes/model.py sets
    1): the next test in this worker starts with the count it had, so that a module's
    fixture and its tests compute with the same number of threads."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)

"""Targeted tests for docs/recipes/safe-checkpoints.md and its reusable functions.

The functions are the site's checkpoint library, snippets/lib/checkpoint_files.py,
imported by name; the page's examples (snippets/recipes/safe_checkpoints.py) are not run
here. The scheduler part of the library (`set_hyperparameters`) is tested with the
schedulers page, tests/changes/test_schedulers.py.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from cookbook_testing.checkpoints import assert_complete, small_state
from cookbook_testing.pages import ROOT, SNIPPETS, assert_quoted, both_languages, program_env
from cookbook_testing.programs import as_user, needs_root

SNIPPET = SNIPPETS / "recipes" / "safe_checkpoints.py"
PAGES = both_languages("recipes/safe-checkpoints.md")


@pytest.fixture(scope="module")
def sc():
    """The recipe's functions, imported by name from snippets/lib/checkpoint_files.py."""
    import checkpoint_files
    return checkpoint_files


# --- 1. atomic save, under SIGKILL ----------------------------------------------------------

KILLS = 60

# One long-lived process imports torch and the functions once, then forks a fresh writer per
# round (fork is cheap; importing torch 60 times is not). Each writer does what a training
# run does at start-up (clean up, resume from the latest checkpoint) and then saves steps
# as fast as it can until it is killed.
ZYGOTE = ROOT / "tests" / "programs" / "kill_writer.py"


@pytest.mark.slow
def test_sigkill_during_saves_never_loses_the_latest_checkpoint(sc, tmp_path):
    directory = tmp_path / "checkpoints"
    zygote = subprocess.Popen(
        [sys.executable, str(ZYGOTE)], env=program_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rng = random.Random(0)
    last_step, killed_mid_save, started = 0, 0, time.perf_counter()
    try:
        for round_ in range(KILLS):
            zygote.stdin.write(f"{directory}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0.02, 0.12))
            os.kill(pid, signal.SIGKILL)
            status = int(zygote.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"round {round_}: the writer stopped by itself (status {status})")

            # What the kill left, then the next start-up: clean, load the latest.
            leftovers = [n for n in os.listdir(directory) if n.startswith(sc.TMP_PREFIX)]
            killed_mid_save += bool(leftovers)
            removed = sc.clean_leftovers(str(directory))
            assert set(leftovers) <= set(removed)
            assert not [n for n in os.listdir(directory) if n.startswith(sc.TMP_PREFIX)]

            skipped = []
            state, path = sc.load_latest(str(directory), log=skipped.append, require_checksum=True)
            assert skipped == [], f"round {round_}: `latest` named an unusable file: {skipped}"
            if state is None:  # killed before the very first save finished
                assert last_step == 0
                continue
            step = int(sc.CHECKPOINT.fullmatch(os.path.basename(path))[1])
            assert_complete(state, step)
            assert step >= last_step, "the latest checkpoint went backwards"
            last_step = step
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        errors = zygote.stderr.read()
    elapsed = time.perf_counter() - started
    print(f"\n{KILLS} kills in {elapsed:.1f} s; {killed_mid_save} left a temporary file; "
          f"last step {last_step}")
    assert zygote.returncode == 0, errors
    assert last_step >= 10, "the writers made too little progress for the test to mean much"
    assert killed_mid_save > 0, "no kill landed during a save: the test proves nothing"


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(sc, tmp_path):
    path = tmp_path / "checkpoint.pt"
    sc.atomic_write(str(path), lambda f: torch.save(small_state(1), f))

    def fails(f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sc.atomic_write(str(path), fails)
    assert_complete(torch.load(path, weights_only=True), 1)
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_keep_last_n_and_checksum_format(sc, tmp_path):
    for step in range(1, 8):
        sc.save_checkpoint(small_state(step), str(tmp_path), step, keep=2)
    assert sorted(os.listdir(tmp_path)) == [
        "ckpt-00000006.pt", "ckpt-00000006.pt.sha256",
        "ckpt-00000007.pt", "ckpt-00000007.pt.sha256", "latest"]
    assert (tmp_path / "latest").read_text() == "ckpt-00000007.pt\n"
    # `sha256sum -c` format: "<hex>  <name>"
    assert re.fullmatch(r"[0-9a-f]{64}  ckpt-00000007\.pt\n",
                        (tmp_path / "ckpt-00000007.pt.sha256").read_text())


def test_rename_across_filesystems_is_refused(tmp_path):
    """The page quotes this error: os.replace cannot move a file to another filesystem."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the temporary directory")
    src = os.path.join(shm, f"safe-checkpoints-{os.getpid()}")
    with open(src, "wb") as f:
        f.write(b"x")
    try:
        with pytest.raises(OSError) as info:
            os.replace(src, tmp_path / "moved")
    finally:
        os.remove(src)
    quoted = f"OSError: [Errno {info.value.errno}] {info.value.strerror}"
    assert quoted == "OSError: [Errno 18] Invalid cross-device link"
    assert_quoted("recipes/safe-checkpoints.md", quoted)


# --- 2. corrupt and truncated files ---------------------------------------------------------

def _two_checkpoints(sc, directory, checksum):
    for step in (1, 2):
        sc.save_checkpoint(small_state(step), str(directory), step, checksum=checksum)
    return directory / "ckpt-00000002.pt"


@pytest.mark.parametrize("checksum", [True, False], ids=["checksum", "no-checksum"])
@pytest.mark.parametrize("keep", [0, 1, 30, 200, 0.5, -200, -100, -1])
def test_truncated_file_gives_a_clear_error_and_falls_back(sc, tmp_path, keep, checksum):
    path = _two_checkpoints(sc, tmp_path, checksum)
    size = path.stat().st_size
    new_size = int(size * keep) if isinstance(keep, float) else keep % size
    os.truncate(path, new_size)

    with pytest.raises(sc.CheckpointError) as info:
        sc.load_checkpoint(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "Load an older checkpoint." in message
    if checksum and new_size:
        assert "sha256 does not match ckpt-00000002.pt.sha256" in message
    elif new_size:
        assert "torch.load failed (" in message

    skipped = []
    state, used = sc.load_latest(str(tmp_path), log=skipped.append)
    assert used == str(tmp_path / "ckpt-00000001.pt")
    assert_complete(state, 1)
    assert len(skipped) == 1 and str(path) in skipped[0]


def _tensor_offset(path, step):
    data = path.read_bytes()
    offset = data.find(torch.full((1000,), float(step)).numpy().tobytes())
    assert offset > 0
    return offset


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_byte_in_tensor_data_loads_silently_without_checksum(sc, tmp_path):
    path = _two_checkpoints(sc, tmp_path, checksum=False)
    _flip(path, _tensor_offset(path, 2) + 3)
    state = torch.load(path, weights_only=True)  # no error from torch.load...
    assert not torch.equal(state["model"]["weight"], torch.full((1000,), 2.0))  # ...wrong data
    assert sc.load_checkpoint(str(path))["step"] == 2  # and none from the loader either


@pytest.mark.parametrize("where", ["start", "pickle", "tensor", "end"])
def test_flipped_byte_is_caught_by_the_checksum(sc, tmp_path, where):
    path = _two_checkpoints(sc, tmp_path, checksum=True)
    size = path.stat().st_size
    offset = {"start": 0, "pickle": 60, "tensor": _tensor_offset(path, 2) + 3,
              "end": size - 10}[where]
    _flip(path, offset)
    with pytest.raises(sc.CheckpointError,
                       match=re.escape(f"{path}: sha256 does not match ckpt-00000002.pt.sha256")):
        sc.load_checkpoint(str(path))
    state, used = sc.load_latest(str(tmp_path), log=lambda message: None)
    assert used.endswith("ckpt-00000001.pt")
    assert_complete(state, 1)


def test_missing_and_required_checksum_and_keys(sc, tmp_path):
    path = _two_checkpoints(sc, tmp_path, checksum=False)
    with pytest.raises(sc.CheckpointError, match=re.escape(f"{path}.missing: no such file")):
        sc.load_checkpoint(f"{path}.missing")
    with pytest.raises(sc.CheckpointError, match="no ckpt-00000002.pt.sha256 beside it"):
        sc.load_checkpoint(str(path), require_checksum=True)
    with pytest.raises(sc.CheckpointError, match=r"missing keys \['scheduler'\]"):
        sc.load_checkpoint(str(path), keys=("model", "scheduler"))


def test_no_checkpoint_at_all_and_none_loadable(sc, tmp_path):
    assert sc.load_latest(str(tmp_path / "absent")) == (None, None)
    path = _two_checkpoints(sc, tmp_path, checksum=True)
    os.truncate(path, 10)
    os.truncate(tmp_path / "ckpt-00000001.pt", 10)
    with pytest.raises(sc.CheckpointError, match="none of .* loads"):
        sc.load_latest(str(tmp_path), log=lambda message: None)


# --- 2b. names past 10^8, damaged sidecars, full disks, racing readers, odd directories ---

@pytest.mark.parametrize("steps", [
    [99_999_998, 99_999_999, 100_000_000, 100_003_000],  # a run that passes 10^8
    [7, 100_003_000, 12_345_678_901],                      # three widths in one directory
], ids=["past-1e8", "mixed-widths"])
def test_names_of_any_width_rotate_and_load_in_numeric_order(sc, tmp_path, steps):
    for step in steps:
        sc.save_checkpoint(small_state(step, 10), str(tmp_path), step, keep=2)
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".pt"))
    assert sorted(names) == sorted(f"ckpt-{s:08d}.pt" for s in steps[-2:])
    state, path = sc.load_latest(str(tmp_path), log=pytest.fail)
    assert_complete(state, steps[-1])
    # Without `latest`, the newest by number, not by string.
    (tmp_path / "latest").unlink()
    state, path = sc.load_latest(str(tmp_path), log=pytest.fail)
    assert_complete(state, steps[-1])
    # The newest damaged: the fallback is the one before it by number.
    (tmp_path / f"ckpt-{steps[-1]:08d}.pt").write_bytes(b"")
    skipped = []
    state, path = sc.load_latest(str(tmp_path), log=skipped.append)
    assert_complete(state, steps[-2]) and len(skipped) == 1


def test_old_eight_digit_names_still_load_beside_wider_ones(sc, tmp_path):
    for step in (99_999_999, 100_000_000):
        sc.save_checkpoint(small_state(step, 10), str(tmp_path), step, keep=5)
    (tmp_path / "ckpt-00000042.pt").write_bytes((tmp_path / "ckpt-99999999.pt").read_bytes())
    (tmp_path / "latest").write_text("ckpt-99999999.pt\n")  # written before 10^8
    state, path = sc.load_latest(str(tmp_path), log=pytest.fail)
    assert path.endswith("ckpt-99999999.pt")
    sc.save_checkpoint(small_state(100_000_001, 10), str(tmp_path), 100_000_001, keep=2)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".pt")) == [
        "ckpt-100000000.pt", "ckpt-100000001.pt"]


@pytest.mark.parametrize("step, keep", [(-1, 3), (2.0, 3), (1, 0)])
def test_a_bad_step_or_keep_is_refused(sc, tmp_path, step, keep):
    with pytest.raises((TypeError, ValueError)):
        sc.save_checkpoint(small_state(1, 10), str(tmp_path), step, keep=keep)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("sidecar", ["", "\n", "not a checksum\n", "abc  ckpt-00000002.pt\n"],
                         ids=["empty", "newline", "text", "short-hash"])
def test_an_empty_or_malformed_sidecar_falls_back_with_a_message(sc, tmp_path, sidecar):
    _two_checkpoints(sc, tmp_path, checksum=True)
    (tmp_path / "ckpt-00000002.pt.sha256").write_text(sidecar)
    with pytest.raises(sc.CheckpointError) as info:
        sc.load_checkpoint(str(tmp_path / "ckpt-00000002.pt"))
    assert str(info.value).startswith(f"{tmp_path / 'ckpt-00000002.pt.sha256'}: ")
    assert "Load an older checkpoint" in str(info.value)
    skipped = []
    state, used = sc.load_latest(str(tmp_path), log=skipped.append)
    assert used.endswith("ckpt-00000001.pt") and len(skipped) == 1
    assert "ckpt-00000002.pt.sha256" in skipped[0]
    assert_complete(state, 1)


def test_a_latest_naming_a_missing_file_falls_back_and_says_so(sc, tmp_path):
    _two_checkpoints(sc, tmp_path, checksum=True)
    (tmp_path / "latest").write_text("ckpt-00000007.pt\n")
    skipped = []
    state, used = sc.load_latest(str(tmp_path), log=skipped.append)
    assert used.endswith("ckpt-00000002.pt") and len(skipped) == 1
    assert "ckpt-00000007.pt: no such file" in skipped[0]
    # Only files newer than what `latest` names: none was committed; the error says so.
    (tmp_path / "latest").write_text("ckpt-00000000.pt\n")
    with pytest.raises(sc.CheckpointError, match="newer than what `latest` names"):
        sc.load_latest(str(tmp_path), log=lambda m: None)


def test_a_second_load_of_the_same_file_gives_the_same_state_and_changes_nothing(sc, tmp_path):
    _two_checkpoints(sc, tmp_path, checksum=True)
    before = {n: (tmp_path / n).stat().st_mtime_ns for n in os.listdir(tmp_path)}
    first, path = sc.load_latest(str(tmp_path), log=pytest.fail)
    second, again = sc.load_latest(str(tmp_path), log=pytest.fail)
    assert path == again and torch.equal(first["model"]["weight"], second["model"]["weight"])
    assert {n: (tmp_path / n).stat().st_mtime_ns for n in os.listdir(tmp_path)} == before


def test_a_directory_that_is_a_file_is_refused_not_taken_for_a_fresh_start(sc, tmp_path):
    path = tmp_path / "checkpoints"
    path.write_bytes(b"not a directory")
    for call in (lambda: sc.load_latest(str(path)), lambda: sc.clean_leftovers(str(path)),
                 lambda: sc.save_checkpoint(small_state(1, 10), str(path), 1)):
        with pytest.raises(NotADirectoryError, match=re.escape(f"{path} is a file")):
            call()
    assert path.read_bytes() == b"not a directory"


def test_a_symlinked_directory_works_and_a_dangling_one_is_refused(sc, tmp_path):
    target = tmp_path / "disk" / "checkpoints"
    target.mkdir(parents=True)
    link = tmp_path / "checkpoints"
    link.symlink_to(target)
    for step in (1, 2, 3):
        sc.save_checkpoint(small_state(step, 10), str(link), step, keep=2)
    assert link.is_symlink() and sorted(os.listdir(target)) == [
        "ckpt-00000002.pt", "ckpt-00000002.pt.sha256",
        "ckpt-00000003.pt", "ckpt-00000003.pt.sha256", "latest"]
    assert_complete(sc.load_latest(str(link), log=pytest.fail)[0], 3)
    # The disk behind the link is gone (not mounted): an error, not a fresh start.
    os.rename(tmp_path / "disk", tmp_path / "unmounted")
    for call in (lambda: sc.load_latest(str(link)),
                 lambda: sc.save_checkpoint(small_state(4, 10), str(link), 4)):
        with pytest.raises(NotADirectoryError, match="a symlink to .* which does not exist"):
            call()


@needs_root
def test_permissions_give_a_clear_error_and_lose_nothing(sc):
    import pathlib
    import shutil
    import tempfile

    base = pathlib.Path(tempfile.mkdtemp())  # in /tmp: another user can reach it
    try:
        _permissions(sc, base)
    finally:
        shutil.rmtree(base)


def _permissions(sc, base):
    base.chmod(0o755)
    directory = base / "checkpoints"
    _two_checkpoints(sc, directory, checksum=True)
    directory.chmod(0o755)  # readable by others, writable by its owner only
    nobody = 65534
    # Another user cannot save here: the error names the directory and what to do.
    out = as_user(nobody, lambda: sc.save_checkpoint(small_state(3, 10), str(directory), 3))
    assert out.startswith("PermissionError: [Errno 13] cannot create a file in "
                          f"{directory}"), out
    assert sorted(os.listdir(directory)) == [
        "ckpt-00000001.pt", "ckpt-00000001.pt.sha256",
        "ckpt-00000002.pt", "ckpt-00000002.pt.sha256", "latest"]
    # A checkpoint that this user cannot read: stop with a clear error, no fallback to an
    # older file (resuming from it would throw the newer one's progress away).
    (directory / "ckpt-00000002.pt").chmod(0o600)
    out = as_user(nobody, lambda: sc.load_latest(str(directory), log=lambda m: None)[1])
    assert out.startswith(f"CheckpointAccessError: {directory / 'ckpt-00000002.pt'}: "
                          "not readable by this user"), out
    assert "ckpt-00000001.pt" not in out


# A really full disk: a small tmpfs mounted for the test.

FULL_STATE_N = 25_000  # 100 kB of float32 per tensor, 3 tensors: a 300 kB checkpoint


def _checkpoint_bytes(sc, tmp_path):
    sc.save_checkpoint(small_state(1, FULL_STATE_N), str(tmp_path / "measure"), 1)
    return os.path.getsize(tmp_path / "measure" / "ckpt-00000001.pt")


def test_a_full_disk_raises_torchs_runtime_error_not_oserror(tmp_path, small_disk):
    disk = small_disk(256 * 1024)
    with pytest.raises(RuntimeError) as info:
        torch.save(small_state(1, FULL_STATE_N), disk / "ckpt.pt")
    assert not isinstance(info.value, OSError)
    assert re.match(r"\[enforce fail at inline_container\.cc:\d+\] \. unexpected pos \d+ vs \d+",
                    str(info.value)), str(info.value)
    # Through a Python file object, as the library writes, the OSError of the write is the
    # RuntimeError's context: errno 28 is there to find.
    (disk / "ckpt.pt").unlink()
    with open(disk / "ckpt.pt", "wb") as f:
        writer = type("W", (), {"write": lambda self, b: f.write(b), "flush": lambda self: None})()
        with pytest.raises(RuntimeError) as info:
            torch.save(small_state(1, FULL_STATE_N), writer)
    assert isinstance(info.value.__context__, OSError) and info.value.__context__.errno == 28
    # /dev/full, which the page uses (no root needed), fails the same way; a save small
    # enough to sit in the C++ stream's buffer fails when the buffer is written, with the
    # stream's own message.
    for n, expected in [(FULL_STATE_N, r"\[enforce fail at inline_container\.cc:\d+\] \. "
                                        r"unexpected pos \d+ vs \d+"),
                        (10, r"basic_ios::clear: iostream error")]:
        with pytest.raises(RuntimeError) as info:
            torch.save(small_state(1, n), "/dev/full")
        assert not isinstance(info.value, OSError)
        assert re.match(expected, str(info.value)), str(info.value)
    assert_quoted("concepts/checkpoint-size.md", "`inline_container.cc`", "`/dev/full`",
                  "`basic_ios::clear: iostream error`")


def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_checkpoint(sc, tmp_path,
                                                                          small_disk):
    size = _checkpoint_bytes(sc, tmp_path)
    disk = small_disk(size * 3 // 2)  # room for one checkpoint, not two
    sc.save_checkpoint(small_state(1, FULL_STATE_N), str(disk), 1, keep=1)
    with pytest.raises(OSError) as info:
        sc.save_checkpoint(small_state(2, FULL_STATE_N), str(disk), 2, keep=1)
    e = info.value
    assert isinstance(e, sc.DiskFullError) and e.errno == 28
    message = str(e)
    assert message.startswith(f"[Errno 28] the disk is full: {disk}/ckpt-00000002.pt "
                              "was not saved"), message
    assert re.search(r"\d+(\.\d)? (bytes|kB|MB) free in " + re.escape(str(disk)), message), message
    assert message.endswith("free space there, or save to another disk"), message
    assert "`latest` still names ckpt-00000001.pt" in message
    assert_quoted("concepts/checkpoint-size.md", "`[Errno 28] the disk is full:`")
    assert sorted(os.listdir(disk)) == ["ckpt-00000001.pt", "ckpt-00000001.pt.sha256", "latest"]
    state, path = sc.load_latest(str(disk), log=pytest.fail, require_checksum=True)
    assert_complete(state, 1)


def test_a_disk_that_holds_keep_checkpoints_but_not_one_more_still_saves(sc, tmp_path,
                                                                        small_disk):
    size = _checkpoint_bytes(sc, tmp_path)
    disk = small_disk(size * 5 // 2)  # room for two checkpoints, not three
    logged = []
    for step in range(1, 6):
        sc.save_checkpoint(small_state(step, FULL_STATE_N), str(disk), step, keep=2,
                           log=logged.append)
        state, path = sc.load_latest(str(disk), log=pytest.fail, require_checksum=True)
        assert_complete(state, step)
        assert not [n for n in os.listdir(disk) if n.startswith(sc.TMP_PREFIX)]
    assert sorted(n for n in os.listdir(disk) if n.endswith(".pt")) == [
        "ckpt-00000004.pt", "ckpt-00000005.pt"]
    assert len(logged) == 3 and all("the disk is full" in m for m in logged), logged
    assert logged[0].startswith(f"{disk}: the disk is full: removed ckpt-00000001.pt")



def test_a_first_save_that_does_not_fit_and_a_read_only_disk(sc, tmp_path, small_disk):
    size = _checkpoint_bytes(sc, tmp_path)
    disk = small_disk(size // 2)
    with pytest.raises(sc.DiskFullError, match="There is no checkpoint yet, and nothing partial"):
        sc.save_checkpoint(small_state(1, FULL_STATE_N), str(disk), 1)
    assert os.listdir(disk) == []
    # A disk mounted read-only: a clear error that names the directory; reading still works.
    disk = small_disk(size * 3)
    sc.save_checkpoint(small_state(1, 10), str(disk), 1)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    with pytest.raises(OSError, match=re.escape(
            f"[Errno 30] cannot create a file in {disk} (Read-only file system): save to a "
            "directory that this user can write to")):
        sc.save_checkpoint(small_state(2, 10), str(disk), 2)
    assert_complete(sc.load_latest(str(disk), log=pytest.fail)[0], 1)

# A reader of `latest` racing the writer's rotation.

def test_a_reader_racing_a_rotation_with_keep_1_never_reports_damage(sc, tmp_path):
    """A writer process saves with keep=1 (each save deletes the file `latest` named just
    before) while this process reads with load_latest, until the step passes 100. In
    /dev/shm where there is one: fsync costs nothing on a tmpfs, so the test takes little
    time; renames and unlinks race as on a disk."""
    import shutil
    import tempfile

    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    directory = tempfile.mkdtemp(dir=shm or tmp_path)
    try:
        _race(sc, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _race(sc, directory):
    sc.save_checkpoint(small_state(1, 10), directory, 1, keep=1)
    pid = os.fork()
    if pid == 0:  # the writer: saves until it is killed
        try:
            for step in range(2, 10**6):
                sc.save_checkpoint(small_state(step, 10), directory, step, keep=1)
        finally:
            os._exit(1)
    skipped, last, reads, started = [], 1, 0, time.perf_counter()
    try:
        while last < 100 and time.perf_counter() - started < 60:
            state, path = sc.load_latest(directory, log=skipped.append, require_checksum=True)
            assert_complete(state, state["step"])
            assert state["step"] >= last
            last, reads = state["step"], reads + 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not skipped, skipped[:3]
    assert last >= 100 and reads >= 20, f"too little racing: step {last}, {reads} reads"


# --- 3. untrusted checkpoints -----------------------------------------------------------------

class Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_payload_is_refused_with_weights_only_and_runs_without(sc, tmp_path):
    target = tmp_path / "payload_ran.txt"
    path = tmp_path / "untrusted.pt"
    torch.save({"weights": torch.ones(3), "extra": Payload(str(target))}, path)

    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(path, weights_only=True)
    assert "Unsupported global: GLOBAL io.open was not an allowed global by default" in str(
        info.value)
    assert not target.exists()  # nothing ran

    with pytest.raises(sc.CheckpointError, match="Unsupported global: GLOBAL io.open"):
        sc.load_checkpoint(str(path))
    assert not target.exists()

    # The payload is real: the unsafe setting runs it (here, harmlessly, in a temp dir).
    torch.load(path, weights_only=False)
    assert target.exists()


def test_every_torch_load_in_the_snippet_passes_weights_only():
    calls = re.findall(r"torch\.load\((.*)", SNIPPET.read_text(encoding="utf-8"))
    assert calls and all("weights_only=" in c for c in calls), calls


def test_raw_torch_load_errors_quoted_on_the_page(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(small_state(1), path)
    data = path.read_bytes()
    assert any(n.endswith("/data.pkl") for n in zipfile.ZipFile(path).namelist())  # a zip + pickle

    quoted = []
    for cut, expected in [(0, EOFError), (100, RuntimeError), (len(data) - 100, OSError)]:
        path.write_bytes(data[:cut])
        with pytest.raises(expected) as info:
            torch.load(path, weights_only=True)
        quoted.append(f"{type(info.value).__name__}: {str(info.value).split('. ')[0]}")
    assert quoted[1] == ("RuntimeError: PytorchStreamReader failed reading zip archive: "
                         "failed finding central directory")
    assert quoted[2] == "OSError: [Errno 22] Invalid argument"
    assert_quoted("recipes/safe-checkpoints.md", "`EOFError`", quoted[1], quoted[2])


def test_weights_only_message_also_suggests_the_unsafe_retry(tmp_path):
    """The page warns that the full message suggests weights_only=False."""
    path = tmp_path / "untrusted.pt"
    torch.save({"extra": Payload(str(tmp_path / "payload_ran.txt"))}, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(path, weights_only=True)
    assert ("Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
            "but it can result in arbitrary code execution") in str(info.value)
    assert "torch.serialization.add_safe_globals([io.open])" in str(info.value)


def test_safetensors_takes_neither_optimizer_nor_scheduler_state(tmp_path):
    from safetensors.torch import save_file

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    for state_dict in (optimizer.state_dict(), scheduler.state_dict()):
        with pytest.raises(ValueError, match="expected torch.Tensor"):
            save_file(state_dict, str(tmp_path / "x.safetensors"))


def test_a_broken_latest_pointer_falls_back_to_the_newest_file(sc, tmp_path):
    _two_checkpoints(sc, tmp_path, checksum=True)
    (tmp_path / "latest").write_text("")
    skipped = []
    state, used = sc.load_latest(str(tmp_path), log=skipped.append)
    assert used.endswith("ckpt-00000002.pt") and len(skipped) == 1
    assert_complete(state, 2)
    (tmp_path / "latest").unlink()
    assert sc.load_latest(str(tmp_path))[1].endswith("ckpt-00000002.pt")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoints_get_the_mode_a_plain_open_gives(sc, tmp_path, umask, mode):
    """Not mkstemp's 0600: a job running as another user (evaluation) must read them."""
    old = os.umask(umask)
    try:
        sc.save_checkpoint(small_state(1), tmp_path, step=1)
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
    finally:
        os.umask(old)
    for name in ("ckpt-00000001.pt", "ckpt-00000001.pt.sha256", "latest"):
        assert (tmp_path / name).stat().st_mode & 0o7777 == mode == plain.stat().st_mode & 0o777


def test_a_replaced_file_keeps_its_mode(sc, tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")
    path.chmod(0o640)
    sc.atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o7777 == 0o640


def test_weights_only_is_claimed_safe_only_from_the_fixed_releases():
    """The pages say "cannot run code" for torch 2.10 and later: the pin must be one of them,
    and the advisories that bound the claim are named on the page."""
    from cookbook_testing.pages import ROOT

    pinned = re.search(r"^torch==(\d+)\.(\d+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert (int(pinned[1]), int(pinned[2])) >= (2, 10)
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 10)
    assert_quoted("recipes/safe-checkpoints.md", "GHSA-53q9-r3pm-6pq6", "GHSA-63cw-57p8-fm3p",
                  "2.6.0", "2.10.0")


def test_resume_runs_as_pasted_in_a_fresh_session(tmp_path, monkeypatch):
    """The resume() block holds the recipe only: first run (nothing saved) and after a save."""
    import checkpoint_files
    from cookbook_testing.pages import sections_namespace

    monkeypatch.chdir(tmp_path)
    ns = sections_namespace(SNIPPET, "running_example", "resume", into=dict(vars(checkpoint_files)))
    model, optimizer, scheduler, start_epoch, path = ns["resume"]("checkpoints")
    assert (start_epoch, path) == (0, None)
    checkpoint_files.save_checkpoint(ns["training_state"](model, optimizer, scheduler, 4),
                                     "checkpoints", step=4)
    *_, start_epoch, path = ns["resume"]("checkpoints")
    assert start_epoch == 5 and path.endswith("ckpt-00000004.pt")

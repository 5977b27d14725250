"""Claims of docs/recipes/background-save.md that its blocks do not show.

The library is snippets/lib/background_checkpoint.py, imported by name. Most tests start the
writer with start="fork" (milliseconds); the tests of the default, start="spawn" (a new
interpreter that imports torch: seconds), are marked slow.
"""

from __future__ import annotations

import copy
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from background_checkpoint import BackgroundCheckpointer, BackgroundSaveError
from checkpoint_files import (CHECKPOINT, DiskFullError, TMP_PREFIX, checkpoint_name,
                              clean_leftovers, load_latest, read_latest, save_checkpoint)
from cookbook_testing.checkpoints import assert_complete, small_state
from cookbook_testing.pages import ROOT, assert_quoted, program_env
from cookbook_testing.programs import as_user, needs_root
from cookbook_testing.signals import running

PAGE = "recipes/background-save.md"


def quiet(message):
    pytest.fail(f"unexpected log: {message}")


def reader_setup(step=2**24 + 3):
    """Several groups with their own hyperparameters, SGD with momentum and AdamW, a float64
    and a bfloat16 parameter, an int64 buffer, and a step past 2**24 (not exact in float32)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3).double(),
                                torch.nn.Linear(3, 2).bfloat16())
    model.register_buffer("seen", torch.tensor([2**40 + 1], dtype=torch.int64))
    adamw = torch.optim.AdamW([{"params": model[0].parameters(), "lr": 1e-3},
                               {"params": model[1].parameters(), "lr": 5e-4,
                                "weight_decay": 0.0, "betas": (0.8, 0.95)}])
    sgd = torch.optim.SGD(model[2].parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return model, adamw, sgd


def step_once(model, adamw, sgd, i):
    g = torch.Generator().manual_seed(i)
    x = torch.randn(4, 6, generator=g)
    out = model[2](model[1](model[0](x).double()).bfloat16())
    adamw.zero_grad()
    sgd.zero_grad()
    out.float().pow(2).mean().backward()
    adamw.step()
    sgd.step()


def state_of(model, adamw, sgd, step):
    return {"model": model.state_dict(), "adamw": adamw.state_dict(), "sgd": sgd.state_dict(),
            "step": step}


def assert_bitwise(a, b, where="state"):
    """Same structure, same plain values, tensors equal bit for bit with the same dtype."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_bitwise(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_bitwise(x, y, f"{where}[{i}]")
    else:
        assert a == b and type(a) is type(b), where


# --- what is saved: the state at the call, bitwise, resumable ----------------------------

def test_the_file_holds_the_state_at_the_call_bitwise_and_resumes_bitwise(tmp_path):
    model, adamw, sgd = reader_setup()
    for i in range(3):
        step_once(model, adamw, sgd, i)
    step = 2**24 + 3
    at_the_call = copy.deepcopy(state_of(model, adamw, sgd, step))
    with BackgroundCheckpointer(str(tmp_path), log=quiet, start="fork") as checkpointer:
        checkpointer.save(state_of(model, adamw, sgd, step), step)
        # Right after save() returns: training changes everything in place.
        for i in range(3, 6):
            step_once(model, adamw, sgd, i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1)
        path = checkpointer.wait()
    assert path == str(tmp_path / "ckpt-16777219.pt")
    saved, used = load_latest(str(tmp_path), log=quiet, require_checksum=True)
    assert used == path
    assert_bitwise(at_the_call, saved)
    assert saved["step"] == 2**24 + 3 and type(saved["step"]) is int

    # Resumed from the file and continued: bitwise the run that never stopped.
    resumed = reader_setup()
    resumed[0].load_state_dict(saved["model"])
    resumed[1].load_state_dict(saved["adamw"])
    resumed[2].load_state_dict(saved["sgd"])
    straight = reader_setup()
    for i in range(3):
        step_once(*straight, i)
    for i in range(3, 8):
        step_once(*resumed, i)
        step_once(*straight, i)
    assert_bitwise(state_of(*straight, 0), state_of(*resumed, 0))


def test_the_files_are_those_of_save_checkpoint(tmp_path):
    """Names, checksums, `latest`, rotation with keep: the same set as save_checkpoint's."""
    ours, theirs = tmp_path / "background", tmp_path / "sync"
    with BackgroundCheckpointer(str(ours), keep=2, log=quiet, start="fork") as checkpointer:
        for step in (5, 6, 7):
            checkpointer.save(small_state(step), step)
    for step in (5, 6, 7):
        save_checkpoint(small_state(step), str(theirs), step, keep=2)
    assert sorted(os.listdir(ours)) == sorted(os.listdir(theirs)) == [
        "ckpt-00000006.pt", "ckpt-00000006.pt.sha256",
        "ckpt-00000007.pt", "ckpt-00000007.pt.sha256", "latest"]
    state, _ = load_latest(str(ours), log=quiet, require_checksum=True)
    assert_complete(state, 7)
    assert_bitwise(torch.load(theirs / "ckpt-00000007.pt", weights_only=True), state)


def test_tied_tensors_stay_tied_and_non_tensors_are_refused(tmp_path):
    weight = torch.arange(6.0).view(2, 3)
    state = {"encoder": weight, "decoder": weight, "view": weight.t()}
    with BackgroundCheckpointer(str(tmp_path), log=quiet, start="fork") as checkpointer:
        checkpointer.save(state, 1)
        assert checkpointer.staging_bytes == 2 * 64  # the tied pair once, the view apart
        with pytest.raises(TypeError, match="a Parameter in the state; pass state dicts"):
            checkpointer.save({"w": torch.nn.Parameter(torch.ones(2))}, 2)
    saved = torch.load(tmp_path / "ckpt-00000001.pt", weights_only=True)
    assert saved["encoder"].data_ptr() == saved["decoder"].data_ptr()  # as torch.save keeps them
    assert torch.equal(saved["view"], weight.t())


# --- memory: one staging copy, reused ------------------------------------------------------

def padded(n):
    """The staging bytes of small_state(step, n): its 3 + 2 tensors, each padded to 64 bytes."""
    return sum(-(-4 * k // 64) * 64 for k in (n, 3, n, n, 1))


def test_staging_memory_is_allocated_once_and_again_only_when_the_shapes_change(tmp_path):
    logged = []
    with BackgroundCheckpointer(str(tmp_path), log=logged.append, start="fork") as checkpointer:
        checkpointer.save(small_state(1, 1000), 1)
        pointers = [t.data_ptr() for t in checkpointer.staged]
        size = checkpointer.staging_bytes
        assert size == padded(1000)  # one copy of the state's tensors
        for step in (2, 3):
            checkpointer.save(small_state(step, 1000), step)
            assert [t.data_ptr() for t in checkpointer.staged] == pointers
        assert logged == []
        checkpointer.save(small_state(4, 2000), 4)  # the model grew
        assert checkpointer.staging_bytes == padded(2000)
        assert len(logged) == 1 and "new staging memory of 0.0 MB replaces the old" in logged[0]
        checkpointer.wait()
        assert_complete(load_latest(str(tmp_path), log=quiet)[0], 4)
        checkpointer.save(small_state(5, 1000), 5)  # and shrank again
    assert_complete(load_latest(str(tmp_path), log=quiet, require_checksum=True)[0], 5)


# --- errors in the background surface in the loop ----------------------------------------

def _big_state(step):
    """64 MiB in one tensor: a write that takes a while."""
    return {"step": step, "model": {"weight": torch.full((64 * 2**18,), float(step))}}


def test_a_killed_writer_surfaces_at_the_next_call_and_loses_nothing_committed(tmp_path):
    with BackgroundCheckpointer(str(tmp_path), log=quiet, start="fork") as checkpointer:
        checkpointer.save(_big_state(1), 1)
        checkpointer.wait()
        checkpointer.save(_big_state(2), 2)
        os.kill(checkpointer.writer_pid, signal.SIGKILL)  # while it writes step 2
        with pytest.raises(BackgroundSaveError) as info:
            checkpointer.wait()
        message = str(info.value)
        assert message.startswith(f"{tmp_path / 'ckpt-00000002.pt'}: not saved: the checkpoint "
                                  "writer (pid "), message
        assert ("(killed by SIGKILL) while writing it. `latest` still names ckpt-00000001.pt"
                in message)
        assert "The next save() starts a new writer" in message
        assert read_latest(str(tmp_path)) == "ckpt-00000001.pt"
        assert load_latest(str(tmp_path), log=quiet, require_checksum=True)[0]["step"] == 1
        checkpointer.save(_big_state(3), 3)  # a new writer
    assert load_latest(str(tmp_path), log=quiet, require_checksum=True)[0]["step"] == 3
    shown = message.replace(str(tmp_path), "checkpoints")
    shown = re.sub(r"\(pid \d+\)", "(pid 4120)", shown).replace("00000002", "00000040")
    assert_quoted(PAGE, shown.replace("ckpt-00000001.pt", "ckpt-00000030.pt"))


def test_a_writer_killed_between_saves_is_replaced_and_said(tmp_path):
    logged = []
    with BackgroundCheckpointer(str(tmp_path), log=logged.append, start="fork") as checkpointer:
        checkpointer.save(small_state(1), 1)
        checkpointer.wait()
        os.kill(checkpointer.writer_pid, signal.SIGKILL)
        time.sleep(0.2)
        checkpointer.save(small_state(2), 2)
    assert len(logged) == 1 and "(killed by SIGKILL) with no save in flight" in logged[0]
    assert_complete(load_latest(str(tmp_path), log=quiet)[0], 2)



def test_a_full_disk_surfaces_as_disk_full_error_and_keeps_the_previous(tmp_path, small_disk):
    save_checkpoint(small_state(1, 25_000), str(tmp_path / "measure"), 1)
    size = os.path.getsize(tmp_path / "measure" / "ckpt-00000001.pt")
    disk = small_disk(size * 3 // 2)  # room for one checkpoint, not two
    with BackgroundCheckpointer(str(disk), keep=1, log=quiet, start="fork") as checkpointer:
        checkpointer.save(small_state(1, 25_000), 1)
        checkpointer.save(small_state(2, 25_000), 2)  # returns: the write fails later
        with pytest.raises(DiskFullError) as info:
            checkpointer.save(small_state(3, 25_000), 3)  # the next call raises it
        message = str(info.value)
        assert message.startswith(f"[Errno 28] the disk is full: {disk}/ckpt-00000002.pt was not "
                                  "saved"), message
        assert message.endswith("(raised in the background writer, saving step 2; `latest` "
                                "names ckpt-00000001.pt)"), message
        assert info.value.errno == 28
    assert sorted(os.listdir(disk)) == ["ckpt-00000001.pt", "ckpt-00000001.pt.sha256", "latest"]
    assert_complete(load_latest(str(disk), log=quiet, require_checksum=True)[0], 1)


@needs_root
def test_permission_denied_surfaces_with_the_directory_and_what_to_do(tmp_path):
    import tempfile

    directory = tempfile.mkdtemp()  # root's, 0755: another user may read it, not write
    os.chmod(directory, 0o755)
    save_checkpoint(small_state(1), directory, 1)

    def save_as_nobody():  # a training process running as another user
        with BackgroundCheckpointer(directory, log=quiet, start="fork") as checkpointer:
            checkpointer.save(small_state(2), 2)
            return checkpointer.wait()

    out = as_user(65534, save_as_nobody)
    assert out.startswith(f"PermissionError: [Errno 13] cannot create a file in {directory} "
                          "(Permission denied): save to a directory that this user can write "
                          "to"), out
    assert out.endswith("(raised in the background writer, saving step 2; `latest` names "
                        "ckpt-00000001.pt)"), out
    assert_complete(load_latest(directory, log=quiet, require_checksum=True)[0], 1)
    import shutil
    shutil.rmtree(directory)


def test_fork_is_refused_once_cuda_is_initialized(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    checkpointer = BackgroundCheckpointer(str(tmp_path), log=quiet, start="fork")
    with pytest.raises(BackgroundSaveError, match=re.escape(
            "start='fork' in a process that has used CUDA: a forked process cannot use CUDA")):
        checkpointer.save(small_state(1), 1)
    assert checkpointer.writer_pid is None and os.listdir(tmp_path) == []


# --- signals: only the training process decides -------------------------------------------

SIGTERM_PROGRAM = r"""
import os, signal, sys, time
import torch
from background_checkpoint import BackgroundCheckpointer
stopped = []
signal.signal(signal.SIGTERM, lambda s, f: stopped.append(s))  # a flag, as StopSignals sets
checkpointer = BackgroundCheckpointer(sys.argv[1], log=print)
checkpointer.save({"step": 0, "w": torch.zeros(64 * 2**18)}, 0)
checkpointer.wait()  # the writer runs: started, and its signals ignored
print("writer", checkpointer.writer_pid, flush=True)
checkpointer.save({"step": 1, "w": torch.full((64 * 2**18,), 1.0)}, 1)
print("saving", flush=True)
while not stopped:
    time.sleep(0.01)
print("stop requested; exiting", flush=True)  # close() at exit finishes the save
"""


@pytest.mark.slow
def test_sigterm_to_the_process_group_during_a_write_lets_it_finish(tmp_path):
    """The writer ignores the signal, and close() at the interpreter's exit waits for the
    write. Slow: the writer is a new interpreter (the default start), which imports torch."""
    directory = tmp_path / "checkpoints"
    program = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_PROGRAM, str(directory)], env=program_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        writer = int(program.stdout.readline().split()[1])
        assert program.stdout.readline() == "saving\n"
        latest_before = read_latest(str(directory))
        os.killpg(program.pid, signal.SIGTERM)  # the whole group: Ctrl-C, a scheduler
        out, err = program.communicate(timeout=120)
    finally:
        if program.poll() is None:
            os.killpg(program.pid, signal.SIGKILL)
    assert latest_before == "ckpt-00000000.pt", "the write ended before the signal"
    assert program.returncode == 0, err
    assert out == "stop requested; exiting\n", (out, err)
    state, _ = load_latest(str(directory), log=quiet, require_checksum=True)
    assert state["step"] == 1 and bool((state["w"] == 1.0).all())
    assert not running(writer)  # close() at exit stopped it


# --- a crash at any moment of the background write ------------------------------------------

ZYGOTE = ROOT / "tests" / "programs" / "kill_background_writer.py"
KILLS = 24


@pytest.mark.slow
def test_sigkill_of_the_writer_or_the_training_never_loses_a_committed_checkpoint(tmp_path):
    """Slow (6 to 12 s on 2 busy cores): rounds of a training process that saves every step
    in the background; each round SIGKILLs its writer (at a random moment), or the training
    process, or both; after each kill the next start loads a complete checkpoint, never older
    than the last one a save() reported committed."""
    directory, reports = tmp_path / "checkpoints", tmp_path / "reports"
    zygote = subprocess.Popen(
        [sys.executable, str(ZYGOTE)], env=program_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rng = random.Random(0)
    committed, writer_kills, mid_save, lost = 0, 0, 0, 0
    try:
        for round_ in range(KILLS):
            reports.write_text("")
            zygote.stdin.write(f"{directory}\t{reports}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            what = ("training", "writer", "both")[round_ % 3]
            _wait_for_a_first_save(reports)  # start-up (resume, fork) is not what is tested
            time.sleep(rng.uniform(0.02, 0.25))
            if what in ("writer", "both"):
                writers = [int(l.split()[1]) for l in reports.read_text().splitlines()
                           if l.startswith("writer ")]
                if writers:
                    with __import__("contextlib").suppress(ProcessLookupError):
                        os.kill(writers[-1], signal.SIGKILL)
                    writer_kills += 1
                    time.sleep(rng.uniform(0.02, 0.1))
            os.kill(pid, signal.SIGKILL)
            status = int(zygote.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"round {round_}: the training process stopped by itself (status {status})")
            lines = reports.read_text().splitlines()
            lost += sum(l.startswith("lost ") for l in lines)
            steps = [int(l.split()[1]) for l in lines if l.startswith("committed ")]
            committed = max([committed, *steps])
            _wait_for_orphans(lines)

            mid_save += any(n.startswith(TMP_PREFIX) for n in os.listdir(directory))
            clean_leftovers(str(directory))
            skipped = []
            state, path = load_latest(str(directory), log=skipped.append, require_checksum=True)
            assert skipped == [], f"round {round_}: `latest` named an unusable file: {skipped}"
            if state is None:
                assert committed == 0
                continue
            step = int(CHECKPOINT.fullmatch(os.path.basename(path))[1])
            assert_complete(state, step)
            assert step >= committed, (f"round {round_}: the latest checkpoint is step {step}, "
                                       f"older than step {committed}, reported committed")
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        errors = zygote.stderr.read()
    print(f"\n{KILLS} rounds: {writer_kills} writers killed, {lost} saves lost with a "
          f"clear error, {mid_save} kills left a temporary file; last committed {committed}")
    assert zygote.returncode == 0, errors
    assert committed >= 10, "the training made too little progress for the test to mean much"
    assert mid_save > 0, "no kill landed during a write: the test proves nothing"
    assert lost > 0, "no killed writer was seen by the training process"


def _wait_for_a_first_save(reports, timeout=10):
    """Until the training process reports its first save() returned (a loaded machine can
    take a while to resume and start a writer)."""
    started = time.perf_counter()
    while "writer " not in reports.read_text() and time.perf_counter() - started < timeout:
        time.sleep(0.005)


def _wait_for_orphans(lines):
    """A writer whose training process was killed exits by itself (it checks every 0.1 s)."""
    for pid in {int(l.split()[1]) for l in lines if l.startswith("writer ")}:
        for _ in range(100):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"the writer {pid} outlived its training process")


# --- dcp.async_save, compared --------------------------------------------------------------

def test_dcp_async_save_writes_a_directory_of_its_own_format(tmp_path):
    """What the page says of torch's own background save: a directory (`.metadata` and one
    `.distcp` file per rank) that torch.load does not read; no `latest`, no checksum, no
    rotation; and the process-based writer needs a process group."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.staging import StagingOptions
    from torch.distributed.checkpoint.state_dict_saver import AsyncCheckpointerType

    state = {"w": torch.ones(4), "step": 3}
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dcp.async_save(state, checkpoint_id=str(tmp_path / "p"),
                       async_checkpointer_type=AsyncCheckpointerType.PROCESS)
    for step in (1, 2):
        dcp.async_save(state, checkpoint_id=str(tmp_path / f"step-{step}"), no_dist=True).result()
    assert sorted(os.listdir(tmp_path)) == ["step-1", "step-2"]  # nothing rotated, no pointer
    assert sorted(os.listdir(tmp_path / "step-2")) == [".metadata", "__0_0.distcp"]
    with pytest.raises(IsADirectoryError):
        torch.load(tmp_path / "step-2", weights_only=True)
    assert "whether to do checkpoint in separate thread or process" in dcp.async_save.__doc__
    assert (StagingOptions().use_shared_memory, StagingOptions().use_pinned_memory) == (True, True)
    assert_quoted(PAGE, "`.metadata`", "`__0_0.distcp`", "`AsyncCheckpointerType.PROCESS`",
                  "`StagingOptions`")


# --- the GPU path ----------------------------------------------------------------------------

@pytest.mark.cuda
def test_cuda_tensors_are_staged_in_pinned_memory_and_saved_bitwise(tmp_path):
    model = torch.nn.Linear(64, 64).cuda()
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    model(torch.randn(8, 64, device="cuda")).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}
    at_the_call = {"model": {k: v.cpu() for k, v in state["model"].items()},
                   "optimizer": copy.deepcopy(optimizer.state_dict())}
    with BackgroundCheckpointer(str(tmp_path), log=quiet) as checkpointer:
        checkpointer.save(state, 1)
        assert checkpointer.staged and all(t.is_pinned() for t in checkpointer.staged)
        with torch.no_grad():
            model.weight.add_(1)  # after save() returns: the file keeps the old values
        checkpointer.wait()
    saved, _ = load_latest(str(tmp_path), log=quiet, require_checksum=True)
    assert all(t.device.type == "cpu" for t in saved["model"].values())
    assert_bitwise(at_the_call["model"], saved["model"])
    for i, entry in at_the_call["optimizer"]["state"].items():
        for k, v in entry.items():
            assert_bitwise(v.cpu(), saved["optimizer"]["state"][i][k])


# --- DataLoader workers: forks of the training process ---------------------------------------

class _Pids(torch.utils.data.Dataset):
    """Each sample: the pid of the process that loaded it."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor([os.getpid(), i])


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("workers_first", [True, False])
def test_saves_while_forked_dataloader_workers_run_are_complete_and_bitwise(
        tmp_path, persistent, workers_first):
    """2 workers (fork), started before or after the first save, persistent or not, 2 epochs:
    every save while they load is on disk bitwise, by the one writer of the training process."""
    loader = torch.utils.data.DataLoader(_Pids(), batch_size=2, num_workers=2,
                                         persistent_workers=persistent)
    with BackgroundCheckpointer(str(tmp_path), keep=2, log=quiet, start="fork") as checkpointer:
        if workers_first:
            batches = iter(loader)
        checkpointer.save(small_state(0), 0)
        writer = checkpointer.writer_pid
        if not workers_first:
            batches = iter(loader)
        step, loaded_by = 0, set()
        for epoch in range(2):
            for batch in batches:
                step += 1
                loaded_by.update(batch[:, 0].tolist())
                checkpointer.save(small_state(step), step)
                assert checkpointer.writer_pid == writer
            batches = iter(loader)
        assert checkpointer.wait() == str(tmp_path / checkpoint_name(step))
        del batches
    assert os.getpid() not in loaded_by and len(loaded_by) == (2 if persistent else 4)
    state, _ = load_latest(str(tmp_path), log=quiet, require_checksum=True)
    assert_bitwise(small_state(step), state)


def test_a_forked_process_neither_saves_nor_stops_the_writer_of_the_training_process(tmp_path):
    """A fork taken while a save is in flight (a DataLoader worker) that calls save(), or
    close(), or exits through the interpreter's exit (close() at exit): save() is refused,
    close() does nothing, and the training process's save completes with its writer."""
    with BackgroundCheckpointer(str(tmp_path), log=quiet, start="fork") as checkpointer:
        checkpointer.save(small_state(1), 1)  # not yet reported when the child runs
        writer = checkpointer.writer_pid
        read, write = os.pipe()  # after the writer's fork: it holds no end of it
        pid = os.fork()
        if pid == 0:  # the child
            try:
                try:
                    checkpointer.save(small_state(2), 2)
                    out = "saved"
                except BackgroundSaveError as e:
                    out = str(e)
                checkpointer.close()
                checkpointer._close_at_exit()  # what the interpreter's exit runs
                os.write(write, out.encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            out = f.read()
        os.waitpid(pid, 0)
        expected = (f"{tmp_path}: save() in process {pid}, a fork of the training process "
                    f"{os.getpid()} (a DataLoader worker?) that created this "
                    "BackgroundCheckpointer: its writer answers the training process only. "
                    "Save from the training process")
        answered = checkpointer._conn.poll(10)  # the child took no message of the writer's
        if not (answered and out == expected):
            os.kill(writer, signal.SIGKILL)  # else close() would wait for it forever
        assert out == expected, out
        assert answered, "the training process's save was never reported"
        assert checkpointer.wait() == str(tmp_path / "ckpt-00000001.pt")
        assert running(writer)
        checkpointer.save(small_state(3), 3)
        assert checkpointer.writer_pid == writer
    assert load_latest(str(tmp_path), log=quiet, require_checksum=True)[0]["step"] == 3


# --- several ranks -----------------------------------------------------------------------------

def _on_two_ranks(tmp_path, work):
    """work(rank) in 2 forked processes with a gloo process group; returns what each returned,
    or the text of the exception it raised."""
    import pickle
    import torch.distributed as dist

    children = []
    for rank in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                torch.set_num_threads(1)
                dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store",
                                        rank=rank, world_size=2)
                try:
                    out = work(rank)
                except Exception as e:  # noqa: BLE001
                    out = f"{type(e).__name__}: {e}"
                dist.barrier()
                dist.destroy_process_group()
                os.write(write, pickle.dumps(out))
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    outs = []
    for pid, read in children:
        with os.fdopen(read, "rb") as f:
            outs.append(pickle.loads(f.read()))
        os.waitpid(pid, 0)
    return outs


def test_two_ranks_saving_into_one_directory_one_is_refused(tmp_path):
    """Every rank creates a checkpointer on the same directory and saves: one saves, the
    other is refused with its rank, the directory and what to do. Rank 0 alone, or a
    directory per rank, saves."""
    shared = tmp_path / "checkpoints"
    import torch.distributed as dist

    def every_rank_saves(rank):
        torch.manual_seed(0)  # replicated, as under DDP
        state = {"model": torch.nn.Linear(4, 2).state_dict(), "step": 10}
        with BackgroundCheckpointer(str(shared), log=quiet, start="fork") as checkpointer:
            dist.barrier()
            try:
                checkpointer.save(state, 10)
                return checkpointer.wait()
            finally:
                dist.barrier()  # both have tried before either closes

    outs = _on_two_ranks(tmp_path, every_rank_saves)
    assert [out for out in outs if not out.startswith("BackgroundSaveError")] == [
        str(shared / "ckpt-00000010.pt")], outs
    refused = next(out for out in outs if out.startswith("BackgroundSaveError"))
    rank = outs.index(refused)
    assert re.fullmatch(
        re.escape(f"BackgroundSaveError: {shared}: another BackgroundCheckpointer already saves "
                  f"into this directory, and this one (rank {rank} of 2, pid ") + r"\d+"
        + re.escape(") may not: two writers in one directory replace each other's "
                    "checkpoints, `latest` and rotation. Under DDP every rank holds the same "
                    "state: create the checkpointer and save on rank 0 only. To save a state "
                    "of each rank, give each rank a directory of its own"), refused), refused
    assert sorted(os.listdir(shared)) == ["ckpt-00000010.pt", "ckpt-00000010.pt.sha256", "latest"]
    assert load_latest(str(shared), log=quiet, require_checksum=True)[0]["step"] == 10

    def the_right_ways(rank):
        state = {"rank": rank, "w": torch.full((3,), float(rank)), "step": 20}
        with BackgroundCheckpointer(str(tmp_path / f"rank-{rank}"), log=quiet,
                                    start="fork") as own:
            own.save(state, 20)
        if rank == 0:
            with BackgroundCheckpointer(str(shared), log=quiet, start="fork") as checkpointer:
                checkpointer.save(state, 20)
        return "saved"

    assert _on_two_ranks(tmp_path, the_right_ways) == ["saved", "saved"]
    for rank in range(2):
        assert load_latest(str(tmp_path / f"rank-{rank}"), log=quiet)[0]["rank"] == rank
    assert load_latest(str(shared), log=quiet, require_checksum=True)[0]["step"] == 20


@pytest.mark.slow
def test_a_sharded_state_is_refused_with_a_pointer_to_dcp_async_save(tmp_path):
    """An FSDP2 model's state_dict() holds DTensors, a part on each rank; nothing is written.
    Slow (2 s): the first fully_shard in a process imports and sets up much of FSDP."""
    from torch.distributed.fsdp import fully_shard

    def fsdp_save(rank):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        fully_shard(model)
        kind = type(model.state_dict()["0.weight"]).__name__
        with BackgroundCheckpointer(str(tmp_path / f"rank-{rank}"), log=quiet,
                                    start="fork") as checkpointer:
            try:
                checkpointer.save({"model": model.state_dict()}, 1)
            except TypeError as e:
                return kind, str(e), os.path.exists(tmp_path / f"rank-{rank}")
        return kind, "saved", None

    outs = _on_two_ranks(tmp_path, fsdp_save)
    assert all(isinstance(out, tuple) for out in outs), outs
    for kind, message, files in outs:
        assert (kind, files) == ("DTensor", False), (kind, message, files)
        assert message == ("BackgroundCheckpointer: a DTensor in the state: a sharded state "
                           "(FSDP, tensor parallelism) has a part on each rank, and this "
                           "checkpointer writes one file from one process. Save it with "
                           "torch.distributed.checkpoint.async_save, which writes every "
                           "rank's part"), message


WITH_WORKERS = ROOT / "tests" / "programs" / "background_save_with_workers.py"


@pytest.mark.slow
def test_spawned_dataloader_workers_and_the_interpreters_exit(tmp_path):
    """Workers started with spawn (persistent, before the first save; and not, after it),
    the default writer (spawn): every save bitwise, and the exit's close() does not hang.
    Slow: new interpreters."""
    done = subprocess.run([sys.executable, str(WITH_WORKERS), "saves", str(tmp_path)],
                          env=program_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("persistent=True workers_first=True: True True\n"
                           "persistent=False workers_first=False: True True\n"), done.stdout


@pytest.mark.slow
def test_the_writer_exits_when_the_training_process_dies_while_its_workers_live(tmp_path):
    """SIGKILL to a training process with persistent fork workers: its writer exits within a
    second, while the workers are still there (they look for their parent every 5 s), and a
    new training process can save into the directory at once. Slow: a new interpreter."""
    directory = tmp_path / "checkpoints"
    program = subprocess.Popen([sys.executable, str(WITH_WORKERS), "dies", str(directory)],
                               env=program_env(), stdout=subprocess.PIPE, text=True)
    try:
        writer, *workers = map(int, program.stdout.readline().split())
        os.kill(program.pid, signal.SIGKILL)
        program.wait()
        started = time.monotonic()
        while running(writer) and time.monotonic() - started < 3:
            time.sleep(0.01)
        assert not running(writer), "the writer outlived its training process"
        assert any(running(w) for w in workers), "the workers were gone first: nothing shown"
        with BackgroundCheckpointer(str(directory), log=quiet, start="fork") as checkpointer:
            checkpointer.save(small_state(2), 2)  # the lock went with the training process
        assert any(running(w) for w in workers)
    finally:
        if program.poll() is None:
            program.kill()
    assert_complete(load_latest(str(directory), log=quiet, require_checksum=True)[0], 2)

"""Training that survives preemption (docs/recipes/preemption.md): a real training process,
stopped at random moments and started again, ends bitwise where an uninterrupted one does.

The program is the page's own sections of snippets/recipes/preemption.py, run by
tests/programs/preemption_restarts.py: one process imports torch once and forks a fresh
process for every start (the restarts), so that many of them fit in a few seconds; the last
start of the SIGTERM test is a new interpreter with PREEMPTION_NEW_INTERPRETER=1. Set
PREEMPTION_ROUNDS for more signals.

The same program also runs the page's TransformerRun: one rank with DataLoader workers (the
worker rule), and 2 ranks over gloo under a launcher (the end-to-end test, whose rounds
PREEMPTION_RANK_ROUNDS sets). The tests send their signals to whole process groups, as SLURM
and a terminal do, and set up every signal disposition they rely on.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from cookbook_testing.pages import ROOT, SNIPPETS, assert_quoted, program_env, sections_namespace
from cookbook_testing.signals import group_running

pytestmark = [pytest.mark.xdist_group("preemption"), pytest.mark.slow]  # module fixtures: one worker

PROGRAM = ROOT / "tests" / "programs" / "preemption_restarts.py"
SNIPPET = SNIPPETS / "recipes" / "preemption.py"
ROUNDS = int(os.environ.get("PREEMPTION_ROUNDS", "20"))  # signals sent in the SIGTERM test
# The last start of the SIGTERM test in a new interpreter too (costs an import of torch).
NEW_INTERPRETER = os.environ.get("PREEMPTION_NEW_INTERPRETER") == "1"
STEPS = 200  # steps of the test's run (the page's run has 60)
FAST = {"total_steps": STEPS, "save_every_s": 3600}  # saves do not change the result
OFTEN = {"total_steps": STEPS, "save_every_s": 0.005}  # many saves: signals land in some
PREEMPTED = 75


class Program:
    """The forking program: start(directory, options) -> pid; wait() -> wait status."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(PROGRAM)], env=program_env(), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def start(self, directory, options):
        self.proc.stdin.write(json.dumps({"directory": str(directory), "options": options}) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait(self):
        return int(self.proc.stdout.readline())

    def run(self, directory, options):
        self.start(directory, options)
        return self.wait()

    def start_request(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def request(self, request):
        self.start_request(request)
        return self.wait()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def program():
    p = Program()
    yield p
    errors = p.close()
    assert p.proc.returncode == 0, errors
    assert "Traceback" not in errors, errors


@pytest.fixture(scope="module")
def cf():
    import checkpoint_files
    return checkpoint_files


def final_state(cf, directory):
    skipped = []
    state, path = cf.load_latest(str(directory), log=skipped.append, require_checksum=True)
    assert skipped == [] and state is not None and state["step"] == STEPS, (path, skipped)
    return state


def tensors(state):
    """Every tensor of the checkpoint, by key: model, optimizer moments and steps, RNGs."""
    out = {f"model.{k}": v for k, v in state["model"].items()}
    for i, s in state["optimizer"]["state"].items():
        out |= {f"optimizer.{i}.{k}": v for k, v in s.items()}
    return out | {k: state[k] for k in ("order", "data_rng", "torch_rng")}


def assert_bitwise_equal(a, b):
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"not bitwise equal: {different}"
    assert a["scheduler"] == b["scheduler"] and a["step"] == b["step"]


@pytest.fixture(scope="module")
def uninterrupted(program, cf, tmp_path_factory):
    """The run that nobody stops, in a process of the same program (same threads), and the
    seconds it took on this machine."""
    directory = tmp_path_factory.mktemp("reference") / "checkpoints"
    program.start(directory, FAST)
    started = time.perf_counter()
    assert os.waitstatus_to_exitcode(program.wait()) == 0
    return final_state(cf, directory), time.perf_counter() - started


@pytest.fixture(scope="module")
def reference(uninterrupted):
    return uninterrupted[0]


@pytest.fixture(scope="module")
def recipe():
    """The page's definitions, without its demonstrations."""
    return sections_namespace(SNIPPET, "running_example", "stop_signals", "train", "workers",
                              module="preemption_test")


def wait_for_a_save(directory, before):
    """Until `latest` moves past step `before`: the process started has trained and saved."""
    started = time.perf_counter()
    while latest_step(directory) == before and time.perf_counter() < started + 60:
        time.sleep(0.001)
    return time.perf_counter() - started


def latest_step(directory):
    try:
        return int(re.fullmatch(r"ckpt-(\d+)\.pt", (directory / "latest").read_text().strip())[1])
    except FileNotFoundError:
        return 0


def test_sigterm_and_sigusr1_at_random_moments(program, uninterrupted, cf, tmp_path):
    reference, seconds = uninterrupted
    # Delays scaled to this machine's speed, so that all the rounds fit in one run.
    longest = max(0.03, 1.2 * seconds / ROUNDS)
    directory = tmp_path / "checkpoints"
    rng = random.Random(0)
    outcomes, steps, started = [], [0], time.perf_counter()
    for _ in range(ROUNDS):
        before = latest_step(directory)
        pid = program.start(directory, OFTEN)
        if rng.random() < 0.75:  # most signals come once training runs; the others at start-up
            wait_for_a_save(directory, before)
        time.sleep(rng.uniform(0.0, longest))
        sent = rng.choice([signal.SIGTERM, signal.SIGUSR1])
        with contextlib.suppress(ProcessLookupError):  # it finished training first
            os.kill(pid, sent)
        status = program.wait()
        if os.WIFSIGNALED(status):  # arrived before main() installed its handlers
            assert os.WTERMSIG(status) == sent
            outcomes.append((sent, "killed before the handlers"))
        else:
            code = os.waitstatus_to_exitcode(status)
            assert code in (PREEMPTED, 0), f"exit code {code}"
            outcomes.append((sent, code))
        assert not [n for n in os.listdir(directory) if n.startswith(cf.TMP_PREFIX)] \
            if directory.exists() else True, "a stop by signal left a temporary file"
        steps.append(latest_step(directory))
        assert steps[-1] >= steps[-2], "the latest checkpoint went backwards"
        if outcomes[-1][1] == 0:
            break
    during_save = (tmp_path / "checkpoints.during-save").read_text().count("\n")
    if NEW_INTERPRETER:  # the last start: a new interpreter, not a fork
        subprocess.run([sys.executable, str(PROGRAM), json.dumps(
            {"directory": str(directory), "options": FAST})], env=program_env(), check=True,
            timeout=300)
    else:
        assert os.waitstatus_to_exitcode(program.run(directory, FAST)) == 0
    codes = [code for _, code in outcomes]
    print(f"\n{len(outcomes)} signals in {time.perf_counter() - started:.1f} s: "
          f"{codes.count(PREEMPTED)} saved and exited {PREEMPTED}, "
          f"{codes.count('killed before the handlers')} before the handlers; "
          f"{during_save} during a save; steps reached {steps[1:]}")
    assert_bitwise_equal(final_state(cf, directory), reference)
    assert codes.count(PREEMPTED) >= min(ROUNDS, 10) // 2
    assert {sent for sent, code in outcomes if code == PREEMPTED} == {signal.SIGTERM,
                                                                      signal.SIGUSR1}
    assert len(set(steps)) >= 4, "too little progress between signals to mean much"
    assert during_save > 0, "no signal arrived during a save: the test proves less than it says"
    saves = [line.split(":")[0] for line in (tmp_path / "checkpoints.log").read_text().splitlines()
             if ": saved (" in line]
    assert all(a != b for a, b in zip(saves, saves[1:])), "a step was saved twice"


def test_sigkill_during_a_save_leaves_no_half_written_file(program, reference, cf, tmp_path):
    """SIGKILL cannot be handled: what it interrupts is a save, which must cost nothing."""
    directory = tmp_path / "checkpoints"
    rng = random.Random(1)
    for round_ in range(40):
        before = latest_step(directory)
        pid = program.start(directory, {"total_steps": STEPS, "save_every_s": 0})
        waited = wait_for_a_save(directory, before)  # it saves at every step from now on
        # Then a random moment within about one start-up and save: mostly in the next save.
        time.sleep(rng.uniform(0.0, min(waited, 0.2)))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        status = program.wait()
        if not os.WIFSIGNALED(status):  # finished training before the kill: start over
            assert os.waitstatus_to_exitcode(status) == 0
            shutil.rmtree(directory)
            continue
        leftovers = [n for n in os.listdir(directory) if n.startswith(cf.TMP_PREFIX)] \
            if directory.exists() else []
        if leftovers and latest_step(directory) > 0:
            break
    else:
        pytest.fail("no SIGKILL landed in a save after a first checkpoint")
    # What `latest` names is complete and checks out; the half-written file is a temporary one.
    skipped = []
    state, path = cf.load_latest(str(directory), log=skipped.append, require_checksum=True)
    assert skipped == [] and state["step"] == latest_step(directory)
    assert os.waitstatus_to_exitcode(program.run(directory, FAST)) == 0
    assert not [n for n in os.listdir(directory) if n.startswith(cf.TMP_PREFIX)]
    assert f"resumed from {path} at step {state['step']}" in (
        tmp_path / "checkpoints.log").read_text()
    assert_bitwise_equal(final_state(cf, directory), reference)
    print(f"\nSIGKILL in a save at round {round_}: {leftovers}; resumed from step {state['step']}")


def test_time_based_saves_use_the_monotonic_clock(recipe):
    """The page's block shows the saves every 10 minutes with a stand-in clock; by default
    the clock is time.monotonic, which changes of the system time do not move."""
    assert inspect.signature(recipe["train"]).parameters["clock"].default is time.monotonic
    assert not time.get_clock_info("monotonic").adjustable


def test_the_exit_code_is_not_what_a_shell_reports_for_sigterm():
    """A shell reports a child killed by SIGTERM as 128 + 15 = 143; 75 cannot be mistaken
    for it, so a wrapper script can tell "saved, start me again" from "killed"."""
    shown = subprocess.run(["bash", "-c", "sleep 30 & kill -TERM $!; wait $!; echo $?"],
                           capture_output=True, text=True, timeout=30).stdout.strip()
    assert shown == "143" and PREEMPTED < 128
    assert_quoted("recipes/preemption.md", "143")


def test_a_signal_before_the_first_step_exits_without_training_or_saving(recipe, tmp_path):
    log = []
    with recipe["StopSignals"]() as stop:
        signal.raise_signal(signal.SIGTERM)  # during start-up
        code = recipe["train"](str(tmp_path / "checkpoints"), stop, log=log.append)
    assert code == PREEMPTED and log == []
    assert not (tmp_path / "checkpoints").exists() or not os.listdir(tmp_path / "checkpoints")


def test_when_no_checkpoint_loads_train_raises_instead_of_starting_over(recipe, cf, tmp_path):
    directory = tmp_path / "checkpoints"
    cf.save_checkpoint(recipe["Run"]().state_dict(), str(directory), 1)
    (directory / "ckpt-00000001.pt").write_bytes(b"PK\x03\x04 damaged")
    with recipe["StopSignals"]() as stop, pytest.raises(cf.CheckpointError) as info:
        recipe["train"](str(directory), stop, log=lambda m: None)
    assert str(directory) in str(info.value) and "ckpt-00000001.pt" in str(info.value)


def test_the_permutation_is_2_kb(recipe):
    order = recipe["Run"]().state_dict()["order"]
    assert order.numel() * order.element_size() == 2048


def test_handlers_can_be_installed_only_in_the_main_thread(recipe):
    import threading
    errors = []

    def enter():
        try:
            with recipe["StopSignals"]():
                pass
        except ValueError as e:
            errors.append(e)

    t = threading.Thread(target=enter)
    t.start()
    t.join()
    assert len(errors) == 1


def test_an_uncaught_exception_exits_with_1():
    proc = subprocess.run([sys.executable, "-c", "raise RuntimeError('x')"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 1


def test_a_handler_can_run_in_the_middle_of_optimizer_step():
    """The for-loop Adam (the CPU default) updates one parameter after the other in Python:
    a signal handler can run when some parameters are updated and others are not."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(8)) for _ in range(300)]
    for p in params:
        p.grad = torch.randn(8)
    optimizer = torch.optim.Adam(params, lr=0.1)
    assert optimizer.defaults["foreach"] is None  # the default: for-loop on CPU tensors
    before, halfway = [], []

    def handler(signum, frame):
        if before and not torch.equal(params[0], before[0]) and torch.equal(params[-1], before[-1]):
            halfway.append(True)

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 2e-4, 2e-4)
    try:
        for _ in range(50):
            before[:] = [params[0].detach().clone(), params[-1].detach().clone()]
            optimizer.step()
            if halfway:
                break
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert halfway, "no handler ran in the middle of a step"


def test_without_sigint_ctrl_c_raises_keyboard_interrupt_as_usual(recipe):
    """Where Python's own SIGINT handler is installed: set here, not inherited (a test run
    started as a background job inherits SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with recipe["StopSignals"](signals=(signal.SIGTERM, signal.SIGUSR1)) as stop:
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert stop.received == []
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_a_process_started_with_sigint_ignored_has_no_keyboard_interrupt(inherited):
    """A background job of a non-interactive shell (`cmd &`, nohup) starts with SIGINT
    ignored, and Python then installs no handler for it: Ctrl-C's KeyboardInterrupt is not
    there to keep."""
    disposition = signal.SIG_IGN if inherited == "ignored" else signal.SIG_DFL
    code = ("import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
            "\ntry:\n    signal.raise_signal(signal.SIGINT); print('no exception')"
            "\nexcept KeyboardInterrupt:\n    print('KeyboardInterrupt')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    expected = {"default": "True\nKeyboardInterrupt", "ignored": "False\nno exception"}
    assert out.stdout.strip() == expected[inherited], out.stderr
    def as_from_a_terminal():  # the shell itself starts with the defaults, whatever this run has
        for s in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
    # Read the job's dispositions once it runs `sleep`: bash sets them between fork and exec.
    job = ("sleep 30 & for i in $(seq 1000); do [ \"$(cat /proc/$!/comm)\" = sleep ] && break; "
           "sleep 0.01; done; grep SigIgn /proc/$!/status; kill $!")
    shown = subprocess.run(["bash", "-c", job],
                           capture_output=True, text=True, timeout=30,
                           preexec_fn=as_from_a_terminal).stdout.split()[1]
    assert int(shown, 16) & (1 << (signal.SIGINT - 1)), "bash did not start its job with SIGINT ignored"


# DataLoader workers: one rank alone with 2 workers, and a SIGTERM to its whole process group
# while the workers start. fork: forked by the program (tests/programs/preemption_restarts.py);
# spawn: a new interpreter (tests/programs/preemption_workers.py), whose workers import it.
WORKERS = ROOT / "tests" / "programs" / "preemption_workers.py"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_the_group_is_gone(pgid, kill_after=60):
    """The workers end with their main process (torch's watchdog, at worst)."""
    started = time.perf_counter()
    while time.perf_counter() < started + kill_after:
        if not group_running(pgid):
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail(f"processes of group {pgid} still there after {kill_after} s: a hang")


def forked_with_workers(program, tmp_path, mode, signal_the_group=True):
    """Returns (exit code, the exception's line or "", directory)."""
    directory = tmp_path / "checkpoints"
    pid = program.start_request({"directory": str(directory), "workers": mode})
    started = time.perf_counter()
    while not (tmp_path / "checkpoints.started").exists():
        assert time.perf_counter() < started + 120, "the workers never started"
        time.sleep(0.001)
    if signal_the_group:
        os.killpg(pid, signal.SIGTERM)  # this process and its workers, still starting
    (tmp_path / "checkpoints.go").touch()
    wait_until_the_group_is_gone(pid, kill_after=30)  # the process too: it does not hang
    code = os.waitstatus_to_exitcode(program.wait())
    log = tmp_path / "checkpoints.log"
    return code, log.read_text().strip() if log.exists() else "", directory


def test_workers_ignore_a_signal_to_the_group_and_the_main_process_saves_fork(
        program, cf, tmp_path):
    code, error, directory = forked_with_workers(program, tmp_path, "rule")
    assert code == PREEMPTED, error
    state, _ = cf.load_latest(str(directory), log=print)
    assert state["step"] >= 1


def test_workers_ignore_a_signal_to_the_group_and_the_main_process_saves_spawn(cf, tmp_path):
    """The same with workers started by spawn: each one is a new interpreter that imports
    torch (seconds), all that time with the stop signals blocked."""
    directory = tmp_path / "checkpoints"
    proc = subprocess.Popen(
        [sys.executable, str(WORKERS), str(directory), "spawn", "rule"],
        env={**program_env(), "TEST_PORT": str(free_port())}, start_new_session=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "workers started", proc.stderr.read()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # it hangs: end the whole group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wait_until_the_group_is_gone(proc.pid)
    assert proc.returncode == PREEMPTED and "Traceback" not in err, err
    state, _ = cf.load_latest(str(directory), log=print)
    assert state["step"] >= 1


def test_without_the_worker_rule_a_signal_to_the_group_ends_the_run_unsaved(program, tmp_path):
    """The workers keep torch's handlers: SIGTERM ends them, and the main process raises
    at its next batch instead of saving."""
    code, error, directory = forked_with_workers(program, tmp_path, "no-rule")
    assert code == 1 and not directory.exists()
    assert re.fullmatch(r"RuntimeError: DataLoader worker \(pid\(s\) [\d, ]+\) "
                        r"exited unexpectedly", error), error
    assert_quoted("recipes/preemption.md", "exited unexpectedly")


def test_an_exception_in_the_loop_ends_the_process_with_workers_that_ignore_sigterm(
        program, tmp_path):
    """train closes its batches in `finally`: the workers end before the exception leaves,
    so the process exits with 1 instead of waiting for workers that ignore SIGTERM."""
    code, error, _ = forked_with_workers(program, tmp_path, "crash", signal_the_group=False)
    assert code == 1 and error == "RuntimeError: a bug in the training step"


def test_an_iterator_alive_at_exit_hangs_with_workers_that_ignore_sigterm():
    """At exit, multiprocessing ends a process's workers with SIGTERM and waits for them: a
    worker that ignores SIGTERM keeps an iterator that is still referenced from exiting."""
    code = textwrap.dedent("""
        import signal, sys
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        def ignore_sigterm(worker_id):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if __name__ == "__main__":
            loader = DataLoader(TensorDataset(torch.arange(64)), batch_size=8, num_workers=2,
                                worker_init_fn=ignore_sigterm)
            batches = iter(loader)  # still referenced at exit, as from a traceback
            next(batches), next(batches)  # one batch from each worker: both ran worker_init_fn
            print("exiting", flush=True)
            sys.exit(0)
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "exiting"
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_starting_the_resource_tracker_unblocks_sigint_and_sigterm():
    """Why start_workers starts multiprocessing's resource tracker before it blocks."""
    code = textwrap.dedent("""
        import signal
        from multiprocessing import resource_tracker
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
        resource_tracker.ensure_running()
        print(sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['SIGUSR1']", out.stderr


def test_workers_leave_when_their_main_process_is_gone():
    """torch's watchdog in each worker: the parent's pid is checked every 5 seconds."""
    from torch.utils.data._utils import MP_STATUS_CHECK_INTERVAL, worker
    assert MP_STATUS_CHECK_INTERVAL == 5.0
    assert "os.getppid() != self.manager_pid" in inspect.getsource(worker.ManagerWatchdog.is_alive)
    assert "while watchdog.is_alive():" in inspect.getsource(worker._worker_loop)


def test_iter_draws_the_base_seed_from_the_loaders_generator_or_the_global_one():
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    data = TensorDataset(torch.arange(8))
    sampler = DistributedSampler(data, num_replicas=2, rank=0, shuffle=True, seed=0)
    for generator, moves in ((None, True), (torch.Generator(), False)):
        before = torch.get_rng_state()
        iter(DataLoader(data, batch_size=2, sampler=sampler, generator=generator))
        assert (not torch.equal(before, torch.get_rng_state())) == moves


# Several ranks (tests/programs/preemption_restarts.py with "ranks"): a launcher, 2 ranks of
# the page's TransformerRun over gloo, 2 DataLoader workers each.
RANK_STEPS = 30  # TransformerRun.TOTAL_STEPS
RANKS_FAST = {"total_steps": RANK_STEPS, "save_every_s": 3600}
RANKS_OFTEN = {"total_steps": RANK_STEPS, "save_every_s": 0.005}
RANK_ROUNDS = int(os.environ.get("PREEMPTION_RANK_ROUNDS", "4"))


def rank_tensors(state):
    """Every tensor of a TransformerRun checkpoint: model, AdamW state, each rank's RNG."""
    out = {f"model.{k}": v for k, v in state["model"].items()}
    for i, s in state["optimizer"]["state"].items():
        out |= {f"optimizer.{i}.{k}": v for k, v in s.items()}
    return out | {f"torch_rng.{r}": t for r, t in enumerate(state["torch_rng"])}


def final_rank_state(cf, directory):
    skipped = []
    state, path = cf.load_latest(str(directory), log=skipped.append, require_checksum=True)
    assert skipped == [] and state is not None and state["step"] == RANK_STEPS, (path, skipped)
    return state


@pytest.fixture(scope="module")
def ranks_reference(program, cf, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ranks-reference") / "checkpoints"
    status = program.request({"directory": str(directory), "ranks": 2, "options": RANKS_FAST})
    assert os.waitstatus_to_exitcode(status) == 0, (directory.parent / "checkpoints.log").read_text()
    return final_rank_state(cf, directory)


def test_without_agreement_the_ranks_stop_at_different_steps_and_save_nothing(program, tmp_path):
    """Each rank looking at its own flag: rank 1 alone receives SIGTERM, stops at a step
    boundary and waits in its save for rank 0, which waits in the next step's gradient
    all_reduce; gloo ends both at its timeout (8 s here; 30 minutes by default)."""
    from datetime import timedelta

    import torch.distributed as dist
    directory = tmp_path / "checkpoints"
    status = program.request({"directory": str(directory), "ranks": 2, "no_agreement": True,
                              "options": RANKS_FAST | {"after_step": "sigterm_rank_1_at_5"}})
    assert json.loads((tmp_path / "checkpoints.codes").read_text()) == [1, 1]
    assert os.waitstatus_to_exitcode(status) == 1 and not directory.exists()
    assert "Timed out waiting" in (tmp_path / "checkpoints.log").read_text()
    assert dist.default_pg_timeout == timedelta(minutes=30)


def test_a_save_that_fails_on_rank_0_raises_on_every_rank(program, tmp_path):
    """Rank 0 cannot write (its directory became a file): it raises its own error, and rank
    1, told by the all_reduce that replaces the barrier, raises one that points to it,
    instead of failing in its next collective (with NCCL: waiting there until the timeout)."""
    directory = tmp_path / "checkpoints"
    status = program.request({"directory": str(directory), "ranks": 2, "short_timeout": True,
                              "options": RANKS_OFTEN | {
                                  "after_step": "directory_becomes_a_file_on_rank_0_at_5"}})
    log = (tmp_path / "checkpoints.log").read_text()
    assert os.waitstatus_to_exitcode(status) == 1, log
    assert json.loads((tmp_path / "checkpoints.codes").read_text()) == [1, 1], log
    assert f"rank 0: NotADirectoryError: [Errno 20] {directory} is a file, not a directory" in log
    assert (f"rank 1: RuntimeError: step 5: rank 0 could not save the checkpoint in {directory}; "
            "its own error says why") in log, log


def test_ranks_and_workers_stopped_by_signals_to_the_whole_group_end_bitwise(
        program, ranks_reference, cf, tmp_path):
    """The end-to-end test: SIGTERM or SIGUSR1 to the launcher, both ranks and their workers
    at seeded random moments (every other round: while rank 0 writes a checkpoint), started
    again after each stop, until done; every round ends with both ranks' exit codes equal,
    and the final state is bitwise equal to the uninterrupted run's."""
    directory = tmp_path / "checkpoints"
    rng = random.Random(2)
    steps, started = [0], time.perf_counter()
    for round_ in range(RANK_ROUNDS):
        before = latest_step(directory)
        pid = program.start_request({"directory": str(directory), "ranks": 2,
                                     "options": RANKS_OFTEN})
        wait_for_a_save(directory, before)
        if round_ % 2:  # during a save: as soon as a temporary file appears
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and not (
                    directory.exists() and any(n.startswith(cf.TMP_PREFIX)
                                               for n in os.listdir(directory))):
                time.sleep(0.0005)
        else:
            time.sleep(rng.uniform(0.0, 0.3))
        with contextlib.suppress(ProcessLookupError):  # it finished first
            os.killpg(pid, rng.choice([signal.SIGTERM, signal.SIGUSR1]))
        code = os.waitstatus_to_exitcode(program.wait())
        assert code in (PREEMPTED, 0), (code, (tmp_path / "checkpoints.log").read_text())
        assert not [n for n in os.listdir(directory) if n.startswith(cf.TMP_PREFIX)]
        steps.append(latest_step(directory))
        assert steps[-1] >= steps[-2], "the latest checkpoint went backwards"
        if code == 0:
            break
    codes = [json.loads(line) for line in (tmp_path / "checkpoints.codes").read_text().splitlines()]
    during_save = (tmp_path / "checkpoints.during-save").read_text().count("\n")
    assert os.waitstatus_to_exitcode(program.request(
        {"directory": str(directory), "ranks": 2, "options": RANKS_FAST})) == 0
    print(f"\n{len(codes)} rounds in {time.perf_counter() - started:.1f} s: exit codes {codes}, "
          f"{during_save} signals during a save; steps reached {steps[1:]}")
    assert all(a == b for a, b in codes) and [PREEMPTED, PREEMPTED] in codes
    assert during_save > 0, "no signal arrived during a save"
    final = final_rank_state(cf, directory)
    assert os.waitstatus_to_exitcode(program.request(  # another number of ranks: refused
        {"directory": str(directory), "ranks": 1, "options": RANKS_FAST})) == 1
    assert "ValueError: " + f"{directory}/ckpt-" in (tmp_path / "checkpoints.log").read_text()
    assert "saved by 2 ranks, loaded by 1" in (tmp_path / "checkpoints.log").read_text()
    ta, tb = rank_tensors(final), rank_tensors(ranks_reference)
    assert ta.keys() == tb.keys() and len(final["torch_rng"]) == 2
    assert not [k for k in ta if not torch.equal(ta[k], tb[k])], "not bitwise equal"
    assert final["scheduler"] == ranks_reference["scheduler"]

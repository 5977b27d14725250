"""Training that survives preemption (docs/recipes/preemption.md): a real training process,
stopped at random moments and started again, ends bitwise where an uninterrupted one does.

The program is the page's own sections of snippets/recipes/preemption.py, run by
tests/programs/preemption_restarts.py: one process imports torch once and forks a fresh
process for every start (the restarts), so that many of them fit in a few seconds; the last
start of the SIGTERM test is a new interpreter with PREEMPTION_NEW_INTERPRETER=1. Set
PREEMPTION_ROUNDS for more signals.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from cookbook_testing.pages import ROOT, SNIPPETS, assert_quoted, program_env, sections_namespace

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
    return sections_namespace(SNIPPET, "running_example", "stop_signals", "train",
                              module="preemption_test")


def wait_for_a_save(directory, before):
    """Until `latest` moves past step `before`: the process started has trained and saved."""
    started = time.perf_counter()
    while latest_step(directory) == before and time.perf_counter() < started + 60:
        time.sleep(0.001)
    return time.perf_counter() - started


def latest_step(directory):
    try:
        return int((directory / "latest").read_text()[5:13])
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
    with recipe["StopSignals"](signals=(signal.SIGTERM, signal.SIGUSR1)) as stop:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert stop.received == []

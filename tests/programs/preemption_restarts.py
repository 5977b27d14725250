"""A training program to preempt: tests/recipes/test_preemption.py sends one JSON object per line on
stdin ({"directory": ..., "options": {...}}), and this program forks a fresh process that
runs the page's `main(directory, **options)` for each (fork is cheap; importing torch for
every restart is not). It prints each process's pid, then its wait status. With a JSON
object as its argument it runs `main` once in its own process instead.

With "ranks": N in the object, the forked process is a launcher instead, like torchrun or
srun: it puts itself in a process group of its own (the test signals that whole group: the
launcher, the ranks and their DataLoader workers, as SLURM signals a job step), ignores the
stop signals itself, starts N ranks with the page's `launch_ranks` and TransformerRun, and
exits with their common exit code (99 if they differ), after appending them to
<directory>.codes. "no_agreement": true replaces the page's `agree` by each rank's own
flags, and "after_step": "sigterm_rank_1_at_5" signals rank 1 and its workers only
("directory_becomes_a_file_on_rank_0_at_5": rank 0's next save fails); with either of
"no_agreement" and "short_timeout", a hang ends at gloo's timeout after 8 s. With
"workers" it runs one rank with DataLoader workers instead (see with_workers).

The code is the page's own sections of snippets/recipes/preemption.py. Two wrappers only
observe it: one notes when save_checkpoint is running, the other appends a line to
<directory>.during-save when a signal arrives during a save.
"""

import atexit
import datetime
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time

import torch

from cookbook_testing.forks import serve_forks
from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "recipes" / "preemption.py"
recipe = {"__name__": "preemption_program"}
exec(compile(section_source(SNIPPET, "running_example", "stop_signals", "train", "main",
                            "workers", "transformer_run", "launch_ranks"),
             str(SNIPPET), "exec"), recipe)
torch.set_num_threads(1)  # no thread pool in a process that forks; the same in every run

saving = False
report = None  # the file that counts signals arriving during a save
save_checkpoint = recipe["save_checkpoint"]


def observed_save(*args, **kwargs):
    global saving
    saving = True
    try:
        return save_checkpoint(*args, **kwargs)
    finally:
        saving = False


class ObservedStopSignals(recipe["StopSignals"]):
    def _handler(self, signum, frame):
        if saving:
            os.write(report, b"signal during a save\n")
        super()._handler(signum, frame)


# Warm up: the first optimizer, save and load of a process import more of torch (seconds).
with tempfile.TemporaryDirectory() as warm_up:
    run = recipe["Run"]()
    run.train_step(next(run.batches()))
    recipe["save_checkpoint"](run.state_dict(), warm_up, run.step)
    recipe["load_latest"](warm_up, log=lambda m: None)
    model = recipe["TinyTransformer"]()
    optimizer = torch.optim.AdamW(model.parameters())
    recipe["F"].cross_entropy(model(recipe["tokens"][:4]), torch.zeros(4, dtype=torch.long)).backward()
    optimizer.step()

recipe["save_checkpoint"] = observed_save
recipe["StopSignals"] = ObservedStopSignals


def child(request):
    global report
    directory = request["directory"]
    report = os.open(directory + ".during-save", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with open(directory + ".log", "a") as log:
        try:
            recipe["main"](directory, log=lambda m: print(m, file=log, flush=True),
                           **request["options"])
        except SystemExit as e:
            log.flush()
            os._exit(e.code)


def sigterm_rank_1_at_5(run):
    if run.step == 5 and recipe["dist"].get_rank() == 1:
        for process in multiprocessing.active_children() + [multiprocessing.current_process()]:
            os.kill(process.pid, signal.SIGTERM)


def directory_becomes_a_file_on_rank_0_at_5(run):
    """Rank 0's next save fails: its directory is now a file."""
    if run.step == 5 and recipe["dist"].get_rank() == 0:
        directory = recipe["train_directory"]
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)
        open(directory, "w").close()


def rank(request):
    """One rank: the page's main() with TransformerRun; an exception is logged, exit 1."""
    global report
    directory = request["directory"]
    report = os.open(directory + ".during-save", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    options = dict(request["options"], make_run=recipe["TransformerRun"])
    recipe["train_directory"] = directory
    if "after_step" in options:
        options["after_step"] = globals()[options["after_step"]]
    with open(directory + ".log", "a") as log:
        try:
            recipe["main"](directory, log=lambda m: print(m, file=log, flush=True), **options)
        except Exception as e:
            print(f"rank {recipe['dist'].get_rank()}: {type(e).__name__}: {e}", file=log,
                  flush=True)
            sys.exit(1)  # logged; the exit code says the rest


def launcher(request):
    os.setpgid(0, 0)  # the group the test signals: this process, the ranks, their workers
    for s in recipe["STOP_SIGNALS"]:
        signal.signal(s, signal.SIG_IGN)  # a launcher waits for its ranks' decision
    if request.get("no_agreement"):
        recipe["agree"] = lambda *flags: flags  # each rank its own flags
    if request.get("no_agreement") or request.get("short_timeout"):
        init = recipe["dist"].init_process_group
        recipe["dist"].init_process_group = lambda backend: init(
            backend, timeout=datetime.timedelta(seconds=8))  # no 30-minute wait on a hang
    codes = recipe["launch_ranks"](rank, request["ranks"], request)
    with open(request["directory"] + ".codes", "a") as f:
        print(json.dumps(codes), file=f)
    os._exit(codes[0] if len(set(codes)) == 1 else 99)


class CrashingRun(recipe["TransformerRun"]):
    def train_step(self, batch):
        if self.step == 3:
            raise RuntimeError("a bug in the training step")
        super().train_step(batch)


def with_workers(request):
    """One rank alone (a gloo group of 1) with 2 DataLoader workers forked from it, in a
    process group of its own. Once its first workers are started, it creates
    <directory>.started and waits for <directory>.go (the test signals the group between the
    two). "workers": "rule" runs the page's code, "no-rule" leaves the workers with torch's
    handlers and a plain iter(loader), "crash" raises in step 3. Exit code: main()'s, or 1
    after an exception, whose last line goes to <directory>.log, after the exit handlers."""
    os.setpgid(0, 0)
    directory, mode = request["directory"], request["workers"]
    page_start_workers = recipe["start_workers"]

    def observed_start_workers(loader):
        batches = iter(loader) if mode == "no-rule" else page_start_workers(loader)
        if not os.path.exists(directory + ".started"):
            open(directory + ".started", "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(directory + ".go") and time.monotonic() < deadline:
                time.sleep(0.001)
        return batches

    recipe["start_workers"] = observed_start_workers
    if mode == "no-rule":
        recipe["ignore_stop_signals"] = lambda worker_id: None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
    recipe["dist"].init_process_group("gloo")
    make_run = CrashingRun if mode == "crash" else recipe["TransformerRun"]
    try:
        recipe["main"](directory, make_run=make_run, total_steps=make_run.TOTAL_STEPS,
                       log=lambda m: None)
    except SystemExit as e:
        os._exit(e.code)
    except Exception as e:
        with open(directory + ".log", "a") as log:
            print(f"{type(e).__name__}: {e}", file=log)
        # What the interpreter does when it exits, while the exception's traceback (and the
        # frames it holds) is still alive: multiprocessing ends and joins the workers.
        atexit._run_exitfuncs()
        os._exit(1)


def child_or_launcher(request):
    if "ranks" in request:
        launcher(request)
    elif "workers" in request:
        with_workers(request)
    else:
        child(request)


if len(sys.argv) > 1:  # one run in this process: a restart as a new interpreter
    child(json.loads(sys.argv[1]))

serve_forks(child_or_launcher, json.loads)
sys.stdout.flush()
os._exit(0)  # skip the interpreter's teardown of torch: nothing is left to clean up

"""A training program to preempt: tests/recipes/test_preemption.py sends one JSON object per line on
stdin ({"directory": ..., "options": {...}}), and this program forks a fresh process that
runs the page's `main(directory, **options)` for each (fork is cheap; importing torch for
every restart is not). It prints each process's pid, then its wait status. With a JSON
object as its argument it runs `main` once in its own process instead.

The code is the page's own sections of snippets/recipes/preemption.py. Two wrappers only
observe it: one notes when save_checkpoint is running, the other appends a line to
<directory>.during-save when a signal arrives during a save.
"""

import json
import os
import sys
import tempfile

import torch

from cookbook_testing.forks import serve_forks
from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "recipes" / "preemption.py"
recipe = {"__name__": "preemption_program"}
exec(compile(section_source(SNIPPET, "running_example", "stop_signals", "train", "main"),
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
    run.train_step()
    recipe["save_checkpoint"](run.state_dict(), warm_up, run.step)
    recipe["load_latest"](warm_up, log=lambda m: None)

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


if len(sys.argv) > 1:  # one run in this process: a restart as a new interpreter
    child(json.loads(sys.argv[1]))

serve_forks(child, json.loads)
sys.stdout.flush()
os._exit(0)  # skip the interpreter's teardown of torch: nothing is left to clean up

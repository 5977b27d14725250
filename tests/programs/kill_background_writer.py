"""Training processes to kill: tests/recipes/test_background_save.py sends, per line on stdin,
a checkpoint directory and a report file, separated by a tab.

It imports torch and the libraries once, then forks a fresh training process per line. Each
one does what a training run does at start-up (clean up, resume from the latest checkpoint),
then saves every step in the background (a BackgroundCheckpointer) until it is killed, and
appends to the report file, one line each: `writer <pid>` when a writer is running,
`committed <step>` when a save() or wait() has reported a step committed. A save() that
raises (its writer was killed) is reported as `lost <step>`, and the loop goes on (the
next save starts a new writer). Prints each process's pid, then its wait status.
"""

import os
import tempfile

import torch

from background_checkpoint import BackgroundCheckpointer, BackgroundSaveError
from checkpoint_files import clean_leftovers, load_latest
from cookbook_testing.checkpoints import small_state
from cookbook_testing.forks import serve_forks

torch.set_num_threads(1)  # no thread pool in a process that forks
with tempfile.TemporaryDirectory() as warm_up:  # first calls import more of torch
    with BackgroundCheckpointer(warm_up, log=lambda m: None, start="fork") as c:
        c.save(small_state(1, 10), 1)
    load_latest(warm_up)


def training(line):
    directory, report_file = line.split("\t")
    clean_leftovers(directory)
    state, _ = load_latest(directory, log=lambda message: None)
    step = state["step"] if state else 0
    report = open(report_file, "a", buffering=1)
    checkpointer = BackgroundCheckpointer(directory, keep=3, log=lambda m: None, start="fork")
    in_flight = None
    while True:
        step += 1
        try:
            checkpointer.save(small_state(step, 250_000), step)
        except BackgroundSaveError:  # `in_flight` was lost, and this step is not saved
            report.write(f"lost {in_flight}\n")
            in_flight = None
            continue
        if in_flight is not None:
            report.write(f"committed {in_flight}\n")  # save() waited for it
        report.write(f"writer {checkpointer.writer_pid}\n")
        in_flight = step


serve_forks(training)

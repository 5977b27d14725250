"""A writer to kill: tests/recipes/test_safe_checkpoints.py sends a directory per line on stdin.

It imports torch and the recipe's functions once, then forks a fresh writer per line (fork
is cheap; importing torch 60 times is not). Each writer does what a training run does at
start-up (clean up, resume from the latest checkpoint), then saves steps as fast as it can
until it is killed. Prints each writer's pid, then its wait status.
"""

import tempfile

import torch

from checkpoint_files import clean_leftovers, load_latest, save_checkpoint
from cookbook_testing.checkpoints import small_state
from cookbook_testing.forks import serve_forks

torch.set_num_threads(1)  # no thread pool in a process that forks
with tempfile.TemporaryDirectory() as warm_up:  # first calls import more of torch
    save_checkpoint(small_state(1, 10), warm_up, 1)
    load_latest(warm_up)


def writer(directory):
    clean_leftovers(directory)
    state, _ = load_latest(directory, log=lambda message: None)
    step = state["step"] if state else 0
    while True:
        step += 1
        save_checkpoint(small_state(step, 250_000), directory, step, keep=3)


serve_forks(writer)

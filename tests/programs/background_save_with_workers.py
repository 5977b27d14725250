"""DataLoader workers beside a BackgroundCheckpointer (its default writer, start="spawn"), for
tests/recipes/test_background_save.py.

`saves <directory>`: workers started with spawn, persistent or not, before or after the first
save, 2 epochs with a save per batch; prints one line per setup: the setup, whether the last
checkpoint is bitwise the state saved, and whether its workers were other processes. Then it
exits through the interpreter's exit (close() at exit), which must not hang.
`dies <directory>`: persistent fork workers, a save in flight; prints the writer's pid and the
workers' pids, then sleeps until it is killed.
"""

import os
import sys
import time

import torch

from background_checkpoint import BackgroundCheckpointer
from checkpoint_files import load_latest


class Pids(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor([os.getpid(), i])


def state(step):
    return {"step": step, "w": torch.arange(1000, dtype=torch.float64) * step}


def saves(directory):
    for persistent, workers_first in ((True, True), (False, False)):
        where = os.path.join(directory, f"persistent-{persistent}-first-{workers_first}")
        checkpointer = BackgroundCheckpointer(where, keep=2, log=print)
        loader = torch.utils.data.DataLoader(Pids(), batch_size=2, num_workers=2,
                                             persistent_workers=persistent,
                                             multiprocessing_context="spawn")
        if not workers_first:
            checkpointer.save(state(0), 0)
        step, pids = 0, set()
        for epoch in range(2):
            for batch in loader:
                step += 1
                pids.update(batch[:, 0].tolist())
                checkpointer.save(state(step), step)
        checkpointer.wait()
        saved, _ = load_latest(where, require_checksum=True)
        print(f"persistent={persistent} workers_first={workers_first}:",
              saved["step"] == step and torch.equal(saved["w"], state(step)["w"]),
              os.getpid() not in pids, flush=True)
    # no close(): the interpreter's exit closes both checkpointers


def dies(directory):
    checkpointer = BackgroundCheckpointer(directory, log=lambda message: None)
    checkpointer.save(state(0), 0)
    checkpointer.wait()
    batches = iter(torch.utils.data.DataLoader(Pids(), num_workers=2, persistent_workers=True))
    next(batches)
    checkpointer.save({"step": 1, "w": torch.zeros(2**24)}, 1)
    print(checkpointer.writer_pid, *(w.pid for w in batches._workers), flush=True)
    time.sleep(300)


if __name__ == "__main__":
    {"saves": saves, "dies": dies}[sys.argv[1]](sys.argv[2])

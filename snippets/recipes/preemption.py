# Recipe: training that survives preemption: save at the next step boundary on SIGTERM,
# SIGUSR1 or SIGINT, save every N minutes, resume by itself from the newest good checkpoint.
# Page: docs/recipes/preemption.md (and .ja.md). Sections are embedded in page order.
# The checkpoint files are written and read by checkpoint_files.py (the functions of
# docs/recipes/safe-checkpoints.md), imported by the first section.

# --8<-- [start:running_example]
import os
import signal
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The functions of the "Safe checkpoint files" recipe, saved as checkpoint_files.py:
from checkpoint_files import clean_leftovers, load_latest, save_checkpoint

# Synthetic data: 256 samples of 20 features, two classes; 8 batches of 32 per epoch.
g = torch.Generator().manual_seed(0)
features = torch.randn(256, 20, generator=g)
targets = (features[:, :5].sum(dim=1) > 0).long()
BATCH, BATCHES = 32, 8
TOTAL_STEPS = 60


class Run:
    """The model, the optimizer, the scheduler, the data order and the step: everything a
    bitwise resume needs, with state_dict() / load_state_dict() like a module."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(64, 2))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, TOTAL_STEPS)
        self.data_rng = torch.Generator().manual_seed(seed)  # shuffles the data, nothing else
        self.order = torch.arange(len(features))  # this epoch's order of the samples
        self.step = 0

    def train_step(self):
        i = self.step % BATCHES  # the batch's position in its epoch
        if i == 0:  # a new epoch: a new order
            self.order = torch.randperm(len(features), generator=self.data_rng)
        batch = self.order[i * BATCH:(i + 1) * BATCH]
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(features[batch]), targets[batch]).backward()  # dropout
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "order": self.order, "data_rng": self.data_rng.get_state(),
                "torch_rng": torch.get_rng_state()}  # dropout's masks

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.order = state["step"], state["order"]
        self.data_rng.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])  # last: building the model drew from it
# --8<-- [end:running_example]


# --8<-- [start:stop_signals]
class StopSignals:
    """Turns SIGTERM, SIGUSR1 (SLURM's warning) and SIGINT (Ctrl-C) into a request to stop.

    The handler only records the signal; the training loop looks at `requested` at each
    step boundary. A second SIGINT raises KeyboardInterrupt at once (a person pressing
    Ctrl-C again); a second SIGTERM or SIGUSR1 is only recorded: the save that may be
    running is what is left to do. Use it as a context manager in the main thread; it puts
    the previous handlers back when it exits.
    """

    def __init__(self, signals=(signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)):
        self.signals = signals
        self.received = []  # signal numbers, in order of arrival
        self._previous = {}

    @property
    def requested(self):
        return bool(self.received)

    def _handler(self, signum, frame):
        self.received.append(signum)  # nothing else: see "Why the handler only sets a flag"
        if signum == signal.SIGINT and self.received.count(signal.SIGINT) > 1:
            raise KeyboardInterrupt

    def __enter__(self):
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, previous in self._previous.items():
            signal.signal(s, previous)
# --8<-- [end:stop_signals]


# --8<-- [start:second_signal]
before = signal.getsignal(signal.SIGTERM)
with StopSignals() as stop:
    signal.raise_signal(signal.SIGUSR1)  # SLURM's warning
    signal.raise_signal(signal.SIGTERM)  # SLURM at the time limit: the second signal
    print("after SIGUSR1 and SIGTERM:", [signal.Signals(s).name for s in stop.received])
    signal.raise_signal(signal.SIGINT)  # Ctrl-C: the first one is a request too
    try:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C again: stop now
    except KeyboardInterrupt:
        print("second Ctrl-C: KeyboardInterrupt")
assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
# --8<-- [end:second_signal]


# --8<-- [start:train]
PREEMPTED = 75  # EX_TEMPFAIL in sysexits.h: "try again later"; 0 means training is complete
KEYS = ("model", "optimizer", "scheduler", "step", "order", "data_rng", "torch_rng")


def train(directory, stop, total_steps=TOTAL_STEPS, save_every_s=30 * 60, keep=3,
          clock=time.monotonic, after_step=None, log=print):
    """Train to `total_steps`, resuming from `directory`; return 0 when done, PREEMPTED
    when `stop` was requested (the checkpoint of the step reached is saved by then)."""
    clean_leftovers(directory)  # temporary files of a save that was killed
    state, path = load_latest(directory, log=log, keys=KEYS)  # falls back past damaged files
    run = Run()
    if state is not None:
        run.load_state_dict(state)
        log(f"resumed from {path} at step {run.step}")
    saved_step, last_save = run.step, clock()

    def save(reason):
        nonlocal saved_step, last_save
        if run.step != saved_step:  # not twice: a signal during a time-based save
            save_checkpoint(run.state_dict(), directory, run.step, keep=keep)
            log(f"step {run.step}: saved ({reason})")
        saved_step, last_save = run.step, clock()

    while run.step < total_steps:
        # A step boundary: the step before is complete, the next one has not begun.
        if clock() - last_save >= save_every_s:
            save("time")
        if stop.requested:  # after the time-based save: a signal during it is seen here
            save(signal.Signals(stop.received[0]).name)
            return PREEMPTED
        run.train_step()
        if after_step is not None:
            after_step(run)
    save("end")
    return 0
# --8<-- [end:train]


# --8<-- [start:main]
def main(directory="checkpoints", **options):
    with StopSignals() as stop:
        code = train(directory, stop, **options)
    sys.exit(code)  # 75: preempted, start again; 0: done
# --8<-- [end:main]


# --8<-- [start:uninterrupted]
reference = Run()
while reference.step < TOTAL_STEPS:
    reference.train_step()


def bitwise_equal(state, run):
    """The model's and the optimizer's tensors in `state` equal those of `run`, bit for bit."""
    ours = run.state_dict()
    return (all(torch.equal(state["model"][k], t) for k, t in ours["model"].items())
            and all(torch.equal(state["optimizer"]["state"][i][k], t)
                    for i, s in ours["optimizer"]["state"].items() for k, t in s.items()))
# --8<-- [end:uninterrupted]


# --8<-- [start:preempted]
def send_sigterm_at_step_23(run):
    """Stands in for the scheduler: the signal arrives while step 23 is being trained."""
    if run.step == 23:
        os.kill(os.getpid(), signal.SIGTERM)


with StopSignals() as stop:
    code = train("checkpoints", stop, after_step=send_sigterm_at_step_23)
print("exit code", code)
print(sorted(os.listdir("checkpoints")))
# --8<-- [end:preempted]


# --8<-- [start:resumed]
with StopSignals() as stop:
    code = train("checkpoints", stop)  # the next start: nothing to pass, it finds its place
print("exit code", code)
state, path = load_latest("checkpoints")
print(path, "bitwise equal to the uninterrupted run:", bitwise_equal(state, reference))
# --8<-- [end:resumed]



# --8<-- [start:time_based]
class FakeClock:
    """A stand-in for time.monotonic in which every training step takes one minute."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def tick(self, run):
        self.now += 60.0


clock = FakeClock()
with StopSignals() as stop:
    train("every-10-minutes", stop, total_steps=35, save_every_s=10 * 60,
          clock=clock, after_step=clock.tick)
print(sorted(os.listdir("every-10-minutes")))
# --8<-- [end:time_based]


# --8<-- [start:fallback]
newest = "checkpoints/ckpt-00000060.pt"
with open(newest, "r+b") as f:  # damage the newest checkpoint: one byte in the middle
    f.seek(os.path.getsize(newest) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))

with StopSignals() as stop:
    code = train("checkpoints", stop)
print("exit code", code)
state, path = load_latest("checkpoints")
print(path, "bitwise equal to the uninterrupted run:", bitwise_equal(state, reference))
# --8<-- [end:fallback]

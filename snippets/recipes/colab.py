# Recipe: training in a notebook (Colab, Jupyter, Kaggle) that starts or resumes by itself,
# with the checkpoints on Google Drive in Colab, and a loop that returns instead of exiting.
# Page: docs/recipes/colab.md (and .ja.md). Sections are embedded in page order, one notebook
# cell each. The checkpoint files are written and read by checkpoint_files.py (the
# functions of docs/recipes/safe-checkpoints.md).

# --8<-- [start:drive_import]
try:
    from google.colab import drive  # only in a Colab runtime
except ImportError:
    drive = None
print("Colab:", drive is not None)
# --8<-- [end:drive_import]

if drive is not None:  # the page marks this block colab and shows it unindented
    # --8<-- [start:mount_drive]
    drive.mount("/content/drive")  # asks for access once per runtime
    # --8<-- [end:mount_drive]


# --8<-- [start:checkpoint_dir]
from pathlib import Path

RUN_NAME = "classifier-run-1"  # one folder per training run
if drive is not None:
    CHECKPOINT_DIR = Path("/content/drive/MyDrive/checkpoints") / RUN_NAME  # outlives the VM
else:
    CHECKPOINT_DIR = Path("checkpoints") / RUN_NAME  # Jupyter elsewhere: a folder beside it
CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
print("checkpoints in", CHECKPOINT_DIR)
# --8<-- [end:checkpoint_dir]


# --8<-- [start:run]
import torch
import torch.nn as nn
import torch.nn.functional as F

# The functions of the "Safe checkpoint files" recipe, saved as checkpoint_files.py beside
# the notebook (in Colab: uploaded, or copied to Drive and added to sys.path):
from checkpoint_files import clean_leftovers, load_latest, save_checkpoint

g = torch.Generator().manual_seed(0)
features = torch.randn(256, 20, generator=g)
targets = (features[:, :5].sum(dim=1) > 0).long()
BATCH, BATCHES = 32, 8  # 8 batches of 32 per epoch


class Run:
    """The model, the optimizer, the scheduler, the data order and the step, with
    state_dict() / load_state_dict(): what a bitwise resume needs."""

    def __init__(self, total_steps, seed=0):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(64, 2))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total_steps)
        self.data_rng = torch.Generator().manual_seed(seed)
        self.order = torch.arange(len(features))
        self.step = 0

    def train_step(self):
        i = self.step % BATCHES
        if i == 0:
            self.order = torch.randperm(len(features), generator=self.data_rng)
        batch = self.order[i * BATCH:(i + 1) * BATCH]
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(features[batch]), targets[batch]).backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "order": self.order, "data_rng": self.data_rng.get_state(),
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.order = state["step"], state["order"]
        self.data_rng.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
# --8<-- [end:run]


# --8<-- [start:train_in_notebook]
import signal
import time

KEYS = ("model", "optimizer", "scheduler", "step", "order", "data_rng", "torch_rng")


def train_in_notebook(directory, total_steps, save_every_s=10 * 60, keep=3,
                      clock=time.monotonic, after_step=None):
    """Start, or resume from the newest good checkpoint in `directory`, and train to
    `total_steps`. Returns "done", or "interrupted" when the notebook's Interrupt (SIGINT)
    came: the step reached is saved by then. It never calls sys.exit: in a notebook that
    raises SystemExit and stops the cells that follow."""
    clean_leftovers(directory)
    state, path = load_latest(directory, keys=KEYS)
    run = Run(total_steps)
    if state is not None:
        run.load_state_dict(state)
        print(f"resumed from {Path(path).name} at step {run.step}")
    else:
        print("no checkpoint: starting at step 0")
    saved_step, last_save = run.step, clock()

    def save(reason):
        nonlocal saved_step, last_save
        if run.step != saved_step:
            save_checkpoint(run.state_dict(), directory, run.step, keep=keep)
            print(f"step {run.step}: saved ({reason})")
        saved_step, last_save = run.step, clock()

    interrupts = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupts.append(signum))
    try:
        while run.step < total_steps:
            if clock() - last_save >= save_every_s:
                save("time")
            if interrupts:  # at a step boundary, after the time-based save
                save("interrupt")
                return "interrupted"
            run.train_step()
            if after_step is not None:
                after_step(run)
        save("end")
        return "done"
    finally:
        signal.signal(signal.SIGINT, previous)  # the Interrupt button works as before again
# --8<-- [end:train_in_notebook]


# --8<-- [start:start_or_resume]
status = train_in_notebook(CHECKPOINT_DIR, total_steps=60)
print(status)
# --8<-- [end:start_or_resume]


# --8<-- [start:interrupted]
import os
import shutil


def press_interrupt_at_step_23(run):
    """Stands in for the Interrupt button: SIGINT to this process while step 23 trains."""
    if run.step == 23:
        os.kill(os.getpid(), signal.SIGINT)


shutil.rmtree(CHECKPOINT_DIR)  # start this demonstration over
status = train_in_notebook(CHECKPOINT_DIR, total_steps=60, after_step=press_interrupt_at_step_23)
print(status)
# --8<-- [end:interrupted]


# --8<-- [start:run_again]
status = train_in_notebook(CHECKPOINT_DIR, total_steps=60)  # the same cell, run again
print(status)

reference = Run(60)  # a run that was never interrupted
while reference.step < 60:
    reference.train_step()
state, path = load_latest(CHECKPOINT_DIR)
print("bitwise equal to the uninterrupted run:",
      all(torch.equal(state["model"][k], v) for k, v in reference.model.state_dict().items()))
# --8<-- [end:run_again]


try:  # the page marks this block raises(SystemExit) and shows it unindented
    # --8<-- [start:sys_exit]
    import sys


    def main(directory):  # the end of a training script, pasted into a cell
        status = train_in_notebook(directory, total_steps=60)
        sys.exit(0 if status == "done" else 75)


    main(CHECKPOINT_DIR)
    # --8<-- [end:sys_exit]
except SystemExit as exit_:
    assert exit_.code == 0  # as a script, this file goes on to its end

# Recipe: Accelerate's save_state / load_state, objects it does not know, and the data position.
# Page: docs/frameworks/accelerate.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
features = torch.randn(64, 4, generator=g)
dataset = TensorDataset(features, features.sum(dim=1, keepdim=True))
TOTAL_STEPS = 12  # 8 batches per epoch: the run stops and resumes in the middle of one


class Progress:
    """Where the run is. Accelerate does not know it: it saves it because it has
    state_dict and load_state_dict and is registered for checkpointing."""

    def __init__(self):
        self.epoch, self.batches_done, self.step = 0, 0, 0

    def state_dict(self):
        return {"epoch": self.epoch, "batches_done": self.batches_done, "step": self.step}

    def load_state_dict(self, state_dict):
        self.epoch = state_dict["epoch"]
        self.batches_done = state_dict["batches_done"]
        self.step = state_dict["step"]


def build():
    set_seed(0)
    # The seedable sampler shuffles each epoch from the seed and the epoch number.
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(
        use_seedable_sampler=True))
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    # A generator of its own: creating an iterator would otherwise draw from torch's global one.
    loader = DataLoader(dataset, batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    progress = Progress()
    accelerator.register_for_checkpointing(progress)
    return accelerator, model, optimizer, loader, scheduler, progress


def train_until(run, stop):
    accelerator, model, optimizer, loader, scheduler, progress = run
    while progress.step < stop:
        loader.set_epoch(progress.epoch)
        # In the middle of an epoch, skip the batches it already trained on.
        batches = accelerator.skip_first_batches(loader, progress.batches_done)
        for x, y in batches:
            accelerator.backward(F.mse_loss(model(x), y))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            progress.step += 1
            progress.batches_done += 1
            if progress.step == stop:
                return
        progress.epoch, progress.batches_done = progress.epoch + 1, 0


def params(run):
    return [p.detach().clone() for p in run[1].parameters()]
# --8<-- [end:setup]


# --8<-- [start:save]
reference = build()
train_until(reference, TOTAL_STEPS)

first = build()
train_until(first, 5)
first[0].save_state("ckpt")
print(sorted(os.listdir("ckpt")))
# --8<-- [end:save]


# --8<-- [start:inspect]
from accelerate.utils import load

optimizer_state = torch.load("ckpt/optimizer.bin", weights_only=True)
first_param = optimizer_state["state"][0]
print("optimizer.bin:", sorted(first_param), "step =", int(first_param["step"]))
scheduler_state = torch.load("ckpt/scheduler.bin", weights_only=True)
print("scheduler.bin: last_epoch =", scheduler_state["last_epoch"])
print("custom_checkpoint_0.pkl:", torch.load("ckpt/custom_checkpoint_0.pkl", weights_only=True))
random_states = load("ckpt/random_states_0.pkl")  # numpy's legacy state: Accelerate's own loader
print("random_states_0.pkl:", sorted(random_states))
# --8<-- [end:inspect]


# --8<-- [start:resume]
resumed = build()
resumed[0].load_state("ckpt")  # also loads `progress`, registered in build()
print("resumed at", resumed[5].state_dict())
train_until(resumed, TOTAL_STEPS)
print("bitwise equal:", all(torch.equal(a, b) for a, b in zip(params(resumed), params(reference))))
# --8<-- [end:resume]


# --8<-- [start:register_error]
accelerator = Accelerator(cpu=True)
try:
    accelerator.register_for_checkpointing({"step": 5})  # a dict has no state_dict()
except ValueError as error:
    print(str(error).splitlines()[0])
# --8<-- [end:register_error]


# --8<-- [start:crafted_folder]
import os
import shutil


class Payload:
    """What a crafted custom_checkpoint_0.pkl can hold: a call that unpickling makes."""

    def __reduce__(self):
        return (os.mkdir, ("payload_ran",))  # harmless here: it makes a folder


shutil.copytree("ckpt", "crafted")
torch.save(Payload(), "crafted/custom_checkpoint_0.pkl")
try:
    build()[0].load_state("crafted")
except TypeError as error:  # Progress.load_state_dict then gets None, after the call ran
    print("load_state:", type(error).__name__)
print("the file's call ran:", os.path.isdir("payload_ran"))
# --8<-- [end:crafted_folder]


# --8<-- [start:load_state_checked]
import glob
import os
import pickle

import torch


def load_state_checked(accelerator, folder):
    """accelerator.load_state(folder), after checking that each custom_checkpoint_N.pkl in it
    is plain data: load_state unpickles those files with weights_only=False, so a crafted one
    runs the code it names. Name the folder; keep it where only your runs can write."""
    for path in sorted(glob.glob(os.path.join(folder, "custom_checkpoint_*.pkl"))):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            named = [line for line in str(error).splitlines() if "GLOBAL" in line]
            raise RuntimeError(f"{path} is not plain data ({(named or ['?'])[0]}): load_state "
                               "would run the code it names; do not load this folder") from None
    accelerator.load_state(folder)
# --8<-- [end:load_state_checked]


# --8<-- [start:load_state_checked_use]
shutil.rmtree("payload_ran")
try:
    load_state_checked(build()[0], "crafted")
except RuntimeError as error:
    print(error)
print("the file's call ran:", os.path.isdir("payload_ran"))

checked = build()
load_state_checked(checked[0], "ckpt")  # the run's own folder: its state is plain data
train_until(checked, TOTAL_STEPS)
print("bitwise equal:", all(torch.equal(a, b) for a, b in zip(params(checked), params(reference))))
# --8<-- [end:load_state_checked_use]

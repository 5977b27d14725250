# Recipe: exact resume (the run continues bitwise as if it had never stopped).
# Page: docs/recipes/exact-resume.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import itertools
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# Synthetic data: 512 samples of 20 features, two classes (no downloads).
g = torch.Generator().manual_seed(0)
features = torch.randn(512, 20, generator=g)
targets = (features[:, :5].sum(dim=1) > 0).long()
dataset = TensorDataset(features, targets)

TOTAL_STEPS = 60  # 16 batches per epoch: the run stops and resumes in the middle of an epoch


class Trainer:
    """Everything a training run owns, and every source of randomness it draws from."""

    def __init__(self, seed=0, device="cpu"):
        self.device = torch.device(device)
        random.seed(seed)
        torch.manual_seed(seed)  # also seeds CUDA
        self.np_rng = np.random.default_rng(seed)
        self.model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(64, 2)).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, TOTAL_STEPS)
        # The loader draws its shuffling from its own generator, not from the global one.
        self.loader = DataLoader(dataset, batch_size=32, shuffle=True,
                                 generator=torch.Generator().manual_seed(seed))
        self.epoch, self.batches_done, self.step = 0, 0, 0
        self.epoch_start_state = self.loader.generator.get_state()

    def train_step(self, x, y):
        x, y = x.to(self.device), y.to(self.device)
        if random.random() < 0.5:  # Python's RNG: mix up half of the batches
            lam = float(self.np_rng.beta(0.4, 0.4))  # numpy's RNG: the mixing weight
            perm = torch.randperm(len(x))  # torch's RNG (as is dropout)
            x = lam * x + (1 - lam) * x[perm.to(self.device)]
            y_mix = lam * F.one_hot(y, 2) + (1 - lam) * F.one_hot(y[perm.to(self.device)], 2)
        else:
            y_mix = F.one_hot(y, 2).float()
        self.optimizer.zero_grad()
        F.cross_entropy(self.model(x), y_mix).backward()
        self.optimizer.step()
        self.scheduler.step()

    def train_until(self, stop):
        while self.step < stop:
            if self.batches_done == 0:  # a new epoch: remember where its shuffle starts
                self.epoch_start_state = self.loader.generator.get_state()
            else:  # in the middle of an epoch: replay its shuffle, skip what was done
                self.loader.generator.set_state(self.epoch_start_state)
            for x, y in itertools.islice(self.loader, self.batches_done, None):
                self.train_step(x, y)
                self.step += 1
                self.batches_done += 1
                if self.step == stop:
                    return
            self.epoch, self.batches_done = self.epoch + 1, 0
# --8<-- [end:setup]


# --8<-- [start:uninterrupted]
reference = Trainer()
reference.train_until(TOTAL_STEPS)
print(f"{reference.step} steps, {reference.epoch} full epochs and "
      f"{reference.batches_done} batches")
# --8<-- [end:uninterrupted]


# --8<-- [start:save]
def save_checkpoint(trainer, path):
    checkpoint = {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        # Where the run is:
        "epoch": trainer.epoch,
        "batches_done": trainer.batches_done,
        "step": trainer.step,
        # The data order: the loader's generator as it was when this epoch began.
        "loader_generator": trainer.epoch_start_state,
        # Every random number generator the run draws from:
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": trainer.np_rng.bit_generator.state,  # a dict of str and int
        "python_rng": random.getstate(),  # a tuple of int
    }
    torch.save(checkpoint, path)
# --8<-- [end:save]


# --8<-- [start:save_run]
first = Trainer()
first.train_until(25)  # stop after 25 steps, in the second epoch
save_checkpoint(first, "checkpoint.pt")
# --8<-- [end:save_run]


# --8<-- [start:load]
def resume(path, device="cpu", skip=()):
    """Build everything as at the start, then overwrite it with the checkpoint.

    `skip` leaves parts of the checkpoint unused, to show what each one is for."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    trainer = Trainer(device=device)  # builds the model: draws from torch's RNG
    trainer.model.load_state_dict(checkpoint["model"])
    if "optimizer" not in skip:
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    if "scheduler" not in skip:
        trainer.scheduler.load_state_dict(checkpoint["scheduler"])
    trainer.epoch = checkpoint["epoch"]
    trainer.step = checkpoint["step"]
    if "batches_done" not in skip:
        trainer.batches_done = checkpoint["batches_done"]
    if "loader_generator" not in skip:
        trainer.epoch_start_state = checkpoint["loader_generator"]
    # The RNG states last: building the objects above drew random numbers.
    if "torch_rng" not in skip:
        torch.set_rng_state(checkpoint["torch_rng"])
        if checkpoint["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    if "numpy_rng" not in skip:
        trainer.np_rng.bit_generator.state = checkpoint["numpy_rng"]
    if "python_rng" not in skip:
        random.setstate(checkpoint["python_rng"])
    return trainer
# --8<-- [end:load]


# --8<-- [start:compare]
resumed = resume("checkpoint.pt")
resumed.train_until(TOTAL_STEPS)


def bitwise_equal(a, b):
    return all(torch.equal(x.cpu(), y.cpu())
               for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


assert resumed.step == reference.step
assert bitwise_equal(resumed, reference)
# --8<-- [end:compare]


# --8<-- [start:omissions]
parts = ["optimizer", "scheduler", "batches_done", "loader_generator",
         "torch_rng", "numpy_rng", "python_rng"]
for part in parts:
    trainer = resume("checkpoint.pt", skip={part})
    trainer.train_until(TOTAL_STEPS)
    print(f"without {part:17} bitwise equal: {bitwise_equal(trainer, reference)}")
# --8<-- [end:omissions]

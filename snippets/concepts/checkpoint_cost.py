# Concept: what checkpointing costs; the formats the benchmark compares, on a small model.
# Page: docs/concepts/checkpoint-cost.md (and .ja.md). Sections are embedded in page order.
# The benchmark itself is bench/checkpoint_bench.py; the page shows its results.

# --8<-- [start:setup]
import torch
import torch.nn as nn


def build():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


model, optimizer = build()
model(torch.randn(32, 256)).sum().backward()
optimizer.step()  # Adam creates its state at the first step


def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


weights = nbytes(model.state_dict().values())
adam = nbytes(t for state in optimizer.state.values() for t in state.values())
print(f"weights: {weights:,} bytes, Adam state: {adam:,} bytes ({adam / weights:.3f}x)")

for p, state in optimizer.state.items():  # two moments the size of each parameter, and a step
    assert state["exp_avg"].shape == state["exp_avg_sq"].shape == p.shape
    assert state["step"].numel() == 1
# --8<-- [end:setup]

# --8<-- [start:mmap]
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pt")

# mmap=True maps the file instead of reading all of it into memory first; the bytes are
# read when load_state_dict copies them into the model and the optimizer.
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True, mmap=True)
model3, optimizer3 = build()
model3.load_state_dict(checkpoint["model"])
optimizer3.load_state_dict(checkpoint["optimizer"])
assert all(torch.equal(p, p3) for p, p3 in zip(model.parameters(), model3.parameters()))

# load_state_dict copied the weights into the model, but kept the optimizer's tensors:
# Adam's moments are still the mapped file's pages.
saved = checkpoint["optimizer"]["state"]
for i, p3 in enumerate(model3.parameters()):
    assert optimizer3.state[p3]["exp_avg"].data_ptr() == saved[i]["exp_avg"].data_ptr()
    assert p3.data_ptr() != checkpoint["model"][list(checkpoint["model"])[i]].data_ptr()
# --8<-- [end:mmap]

# --8<-- [start:split]
from safetensors.torch import load_file, save_file


def save_split(model, optimizer, prefix):
    """Weights in safetensors (no pickle, readable without torch); the optimizer's
    nested dict (tensors, numbers, hyperparameters) with torch.save."""
    save_file(model.state_dict(), f"{prefix}.safetensors")
    torch.save(optimizer.state_dict(), f"{prefix}-optimizer.pt")


def load_split(model, optimizer, prefix):
    model.load_state_dict(load_file(f"{prefix}.safetensors"))
    optimizer.load_state_dict(
        torch.load(f"{prefix}-optimizer.pt", map_location="cpu", weights_only=True))
# --8<-- [end:split]

# --8<-- [start:roundtrip]
save_split(model, optimizer, "checkpoint")

model2, optimizer2 = build()
load_split(model2, optimizer2, "checkpoint")

for p, p2 in zip(model.parameters(), model2.parameters()):
    assert torch.equal(p, p2)
    state, state2 = optimizer.state[p], optimizer2.state[p2]
    assert all(torch.equal(state[k], state2[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
assert optimizer2.param_groups[0]["lr"] == 1e-3
# --8<-- [end:roundtrip]

# --8<-- [start:fast_resume_setup]
import os

from checkpoint_files import load_latest, save_checkpoint


def make():
    """Two parameter groups with their own hyperparameters, and a float64 parameter."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    scale = nn.Parameter(torch.ones(8, dtype=torch.float64))
    optimizer = torch.optim.AdamW([
        {"params": model[0].parameters(), "lr": 1e-3, "weight_decay": 0.1},
        {"params": [*model[2].parameters(), scale], "lr": 3e-4, "betas": (0.8, 0.95)},
    ])
    return model, scale, optimizer


def train(model, scale, optimizer, start, stop):
    for step in range(start, stop):
        x = torch.randn(16, 64, generator=torch.Generator().manual_seed(step))  # batch of `step`
        optimizer.zero_grad()
        (model(x).double() * scale).square().mean().backward()
        optimizer.step()


model, scale, optimizer = make()
train(model, scale, optimizer, 0, 30)  # the run without interruption

model1, scale1, optimizer1 = make()
train(model1, scale1, optimizer1, 0, 20)
save_checkpoint({"model": model1.state_dict(), "scale": scale1.detach(),
                 "optimizer": optimizer1.state_dict(), "step": 20}, "run", 20)
# --8<-- [end:fast_resume_setup]

# --8<-- [start:fast_resume]
model2, scale2, optimizer2 = make()  # a new process builds them afresh
state, path = load_latest("run", fast=True)  # one read of the file, sha256 checked meanwhile
model2.load_state_dict(state["model"])
with torch.no_grad():
    scale2.copy_(state["scale"])
optimizer2.load_state_dict(state["optimizer"])

# The optimizer kept the tensors it was given (same device and dtype): no second copy.
loaded = state["optimizer"]["state"]
params2 = [*model2.parameters(), scale2]
assert all(optimizer2.state[p]["exp_avg"].data_ptr() == loaded[i]["exp_avg"].data_ptr()
           for i, p in enumerate(params2))

train(model2, scale2, optimizer2, state["step"], 30)

params = [*model.parameters(), scale]
same_weights = all(torch.equal(p, p2) for p, p2 in zip(params, params2))
same_state = all(
    torch.equal(optimizer.state[p][k], optimizer2.state[p2][k])
    and optimizer.state[p][k].dtype == optimizer2.state[p2][k].dtype
    and optimizer.state[p][k].device == optimizer2.state[p2][k].device
    for p, p2 in zip(params, params2) for k in ("step", "exp_avg", "exp_avg_sq"))
print(f"resumed from {os.path.basename(path)} at step {state['step']}, trained to step 30")
print(f"weights bitwise equal to the run without interruption: {same_weights}")
print(f"Adam's moments and steps bitwise equal, same dtypes and devices: {same_state}")
# --8<-- [end:fast_resume]

# Recipe: save and resume training (model, optimizer, scheduler).
# Page: docs/recipes/save-and-resume.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """A small CNN for 3x32x32 images and 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(device="cpu"):
    """Model first (on its device), then the optimizer and scheduler that refer to it."""
    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
    return model, optimizer, scheduler


# Synthetic data: 256 random images with random labels, in batches of 64 (no downloads).
g = torch.Generator().manual_seed(0)
images = torch.randn(256, 3, 32, 32, generator=g)
labels = torch.randint(0, 10, (256,), generator=g)


def train_one_epoch(model, optimizer, device="cpu"):
    model.train()
    total = 0.0
    for x, y in zip(images.split(64), labels.split(64)):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / 4


torch.manual_seed(0)
model, optimizer, scheduler = build()
for epoch in range(3):
    loss = train_one_epoch(model, optimizer)
    scheduler.step(loss)  # ReduceLROnPlateau watches a metric
# --8<-- [end:setup]

# --8<-- [start:inspect_optimizer]
from pprint import pprint

pprint(optimizer.state_dict()["param_groups"][0])
# --8<-- [end:inspect_optimizer]

# --8<-- [start:inspect_state]
state = optimizer.state_dict()["state"]
print(len(state), "parameters with state")
print(sorted(state[0]))
print(state[0]["step"])
# --8<-- [end:inspect_state]

# --8<-- [start:inspect_model]
for name, tensor in model.state_dict().items():
    print(f"{name:12} {tuple(tensor.shape)}")
# --8<-- [end:inspect_model]

# --8<-- [start:save_separately]
torch.save(model.state_dict(), "model.pt")
torch.save(optimizer.state_dict(), "optimizer.pt")

import os

ratio = os.path.getsize("optimizer.pt") / os.path.getsize("model.pt")
print(f"optimizer.pt is {ratio:.1f} times the size of model.pt")
# --8<-- [end:save_separately]

# --8<-- [start:load_separately]
model2, optimizer2, scheduler2 = build()
model2.load_state_dict(torch.load("model.pt", weights_only=True))
optimizer2.load_state_dict(torch.load("optimizer.pt", weights_only=True))
# --8<-- [end:load_separately]

# --8<-- [start:assert_equal]
def assert_same_state(a, b):
    """Walk two (nested) state dicts and require equal keys and bitwise-equal tensors."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu()), (a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (a.keys(), b.keys())
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    else:
        assert a == b, (a, b)


assert_same_state(model.state_dict(), model2.state_dict())
assert_same_state(optimizer.state_dict(), optimizer2.state_dict())
# --8<-- [end:assert_equal]

# --8<-- [start:save_checkpoint]
checkpoint = {
    "model": model.state_dict(),
    "optimizer": optimizer.state_dict(),
    "scheduler": scheduler.state_dict(),
    "epoch": epoch,
}
# Write a new file, then rename it over the old one: a crash while saving, or a checkpoint
# still mapped by torch.load(mmap=True), never costs the previous checkpoint.
try:
    torch.save(checkpoint, "checkpoint.pt.tmp")
    os.replace("checkpoint.pt.tmp", "checkpoint.pt")
finally:
    if os.path.exists("checkpoint.pt.tmp"):  # the save failed: no half-written file left
        os.remove("checkpoint.pt.tmp")
# --8<-- [end:save_checkpoint]

# --8<-- [start:load_checkpoint]
model3, optimizer3, scheduler3 = build()
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
model3.load_state_dict(checkpoint["model"])
optimizer3.load_state_dict(checkpoint["optimizer"])
scheduler3.load_state_dict(checkpoint["scheduler"])
start_epoch = checkpoint["epoch"] + 1

assert_same_state(model.state_dict(), model3.state_dict())
assert_same_state(optimizer.state_dict(), optimizer3.state_dict())
assert_same_state(scheduler.state_dict(), scheduler3.state_dict())
assert start_epoch == 3
# --8<-- [end:load_checkpoint]

# --8<-- [start:resume_on_device]
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# 1. model to the device, 2. optimizer and scheduler built on its parameters, 3. load.
model, optimizer, scheduler = build(device)
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
model.load_state_dict(checkpoint["model"])
optimizer.load_state_dict(checkpoint["optimizer"])
scheduler.load_state_dict(checkpoint["scheduler"])

for epoch in range(checkpoint["epoch"] + 1, 6):
    loss = train_one_epoch(model, optimizer, device)
    scheduler.step(loss)
# --8<-- [end:resume_on_device]

# --8<-- [start:check_devices]
def check_state_devices(optimizer):
    """Moments sit on their parameter's device; non-fused Adam keeps `step` on the CPU."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            assert state["exp_avg"].device == p.device
            assert state["exp_avg_sq"].device == p.device
            assert state["step"].device.type == "cpu", state["step"].device


check_state_devices(optimizer)
# --8<-- [end:check_devices]

# --8<-- [start:late_move]
# Loaded while the model was still on the CPU, moved afterwards:
model, optimizer, scheduler = build("cpu")
optimizer.load_state_dict(checkpoint["optimizer"])
model.to(device)  # same Parameter objects, now on `device`; the state stays where it was

# Repair: load the optimizer's own state again; it is cast to the parameters' device.
optimizer.load_state_dict(optimizer.state_dict())
check_state_devices(optimizer)
# --8<-- [end:late_move]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:classic_loop]
    # The loop found in old forum answers. Not needed any more, and it moves `step` too.
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                state[k] = v.to("cuda")

    p = next(model.parameters())
    print(optimizer.state[p]["step"].device)
    # --8<-- [end:classic_loop]

if torch.cuda.is_available():  # the page marks this block cuda and shows it unindented
    # --8<-- [start:count_syncs]
    import warnings


    def syncs_per_step(model, optimizer):
        """Count the host-device synchronizations that one optimizer step makes, as far as
        torch instruments them (.item() and other reads of GPU values are)."""
        for counted in (False, True):  # the first step may initialize things: not counted
            optimizer.zero_grad()
            F.cross_entropy(model(images[:64].to(device)), labels[:64].to(device)).backward()
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    optimizer.step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)


    def resumed(foreach=None, classic_loop=False):
        """Resumed in the right order; then, if asked, the classic loop on top."""
        model, optimizer, scheduler = build(device)
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group in optimizer.param_groups:
            group["foreach"] = foreach  # None: torch's default, the foreach code on CUDA
        if classic_loop:
            for state in optimizer.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor):
                        state[k] = v.to("cuda")
        return model, optimizer


    n = len(list(model.parameters()))
    loop_foreach = syncs_per_step(*resumed(classic_loop=True))
    loop_for = syncs_per_step(*resumed(foreach=False, classic_loop=True))
    right_order = syncs_per_step(*resumed())
    print(f"{n} parameter tensors; syncs per step with the loop: {loop_foreach} (default, foreach), "
          f"{loop_for} (foreach=False); in the right order: {right_order}")
    assert (loop_foreach, loop_for, right_order) == (2 * n, n, 0)
    # --8<-- [end:count_syncs]

# --8<-- [start:map_location]
# Written from the model on `device` (on a GPU machine: CUDA tensors).
torch.save({"model": model.state_dict()}, "gpu_checkpoint.pt")

# Loadable on any machine: every storage is mapped to the CPU while unpickling.

checkpoint = torch.load("gpu_checkpoint.pt", map_location="cpu", weights_only=True)
assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
# --8<-- [end:map_location]

# Troubleshooting: the error messages met when saving and resuming training.
# Page: docs/troubleshooting/errors.md (and .ja.md). Sections are embedded in page order.
# Sections that the page shows raising an error are wrapped below in `raises(...)`, so that
# this file also runs standalone; the page shows them unwrapped (dedented).
import contextlib


@contextlib.contextmanager
def raises(exc_type, match):
    try:
        yield
    except exc_type as error:
        assert match in str(error), error
    else:
        raise AssertionError(f"expected {exc_type.__name__}: {match}")


# --8<-- [start:setup]
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


torch.manual_seed(0)
inputs, targets = torch.randn(32, 8), torch.randint(0, 4, (32,))


def train(model, optimizer, steps=3):
    param = next(model.parameters())  # inputs follow the model's device and dtype
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs.to(param)), targets.to(param.device)).backward()
        optimizer.step()


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train(model, optimizer)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pt")
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
# --8<-- [end:setup]

with raises(RuntimeError, "expected dtype float"):
    # --8<-- [start:dtype_mismatch]
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.load_state_dict(checkpoint["optimizer"])  # state cast to float32 CPU params
    model.double()  # like model.to("cuda"): same Parameter objects, new dtype (or device)
    train(model, optimizer)
    # --8<-- [end:dtype_mismatch]

# --8<-- [start:right_order]
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

model = Net().to(device)  # 1. the model on its device
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # 2. the optimizer on its parameters
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
optimizer.load_state_dict(checkpoint["optimizer"])  # 3. load: moments go to the parameters' device
# --8<-- [end:right_order]

# --8<-- [start:right_order_check]
train(model, optimizer)
for p in model.parameters():
    assert optimizer.state[p]["exp_avg"].device == p.device
    assert optimizer.state[p]["step"].device.type == "cpu"  # Adam without fused/capturable
# --8<-- [end:right_order_check]

# --8<-- [start:repair_in_place]
# The parameters moved after the state was loaded: load the optimizer's own state dict
# again, and every moment is cast to its parameter's current device and dtype.
# Not after model.half(): see the warning below.
optimizer.load_state_dict(optimizer.state_dict())
# --8<-- [end:repair_in_place]

# --8<-- [start:repair_check]
broken_model = Net()
broken_optimizer = torch.optim.Adam(broken_model.parameters(), lr=1e-3)
broken_optimizer.load_state_dict(torch.load("checkpoint.pt", weights_only=True)["optimizer"])
broken_model.double()  # the state stays float32: the next step would fail as above

broken_optimizer.load_state_dict(broken_optimizer.state_dict())  # the repair
train(broken_model, broken_optimizer)
p = broken_model.fc1.weight
assert broken_optimizer.state[p]["exp_avg"].dtype == p.dtype == torch.float64
# --8<-- [end:repair_check]

# --8<-- [start:map_location]
checkpoint = torch.load("checkpoint.pt", map_location="cpu", weights_only=True)
assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
# --8<-- [end:map_location]

# --8<-- [start:weights_only_numpy]
import pickle

import numpy as np


def weights_only_error(path):
    """The line of torch.load's error that names what it refused, or None if it loads."""
    try:
        torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:
        return next(line.strip() for line in str(error).split("\n") if "Unsupported" in line)
    return None


torch.save({"model": model.state_dict(), "numpy_rng": np.random.get_state()}, "numpy_rng.pt")
print(weights_only_error("numpy_rng.pt"))
# --8<-- [end:weights_only_numpy]

# --8<-- [start:weights_only_scalar]
best_loss = np.float64(0.25)  # e.g. np.mean() of the losses of an epoch
torch.save({"model": model.state_dict(), "best_loss": best_loss}, "numpy_scalar.pt")
print(weights_only_error("numpy_scalar.pt"))
# --8<-- [end:weights_only_scalar]

# --8<-- [start:weights_only_namespace]
import argparse

args = argparse.Namespace(lr=1e-3, epochs=10)
torch.save({"model": model.state_dict(), "args": args}, "namespace.pt")
print(weights_only_error("namespace.pt"))
# --8<-- [end:weights_only_namespace]

# --8<-- [start:weights_only_plain_types]
rng = np.random.default_rng(0)
checkpoint = {
    "model": model.state_dict(),
    "best_loss": float(best_loss),  # a Python float
    "args": vars(args),  # a dict of plain values
    "numpy_rng": rng.bit_generator.state,  # a dict of ints and str
    "torch_rng": torch.get_rng_state(),  # a tensor
}
torch.save(checkpoint, "plain.pt")
assert weights_only_error("plain.pt") is None

loaded = torch.load("plain.pt", weights_only=True)
rng2 = np.random.default_rng()
rng2.bit_generator.state = loaded["numpy_rng"]
assert rng2.random() == rng.random()
# --8<-- [end:weights_only_plain_types]

# --8<-- [start:weights_only_allowlist]
from numpy._core.multiarray import _reconstruct

# Only for a file you trust: these globals are allowed during this one load.
with torch.serialization.safe_globals([_reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]):
    loaded = torch.load("numpy_rng.pt", weights_only=True)
assert loaded["numpy_rng"][0] == "MT19937"
# --8<-- [end:weights_only_allowlist]

# --8<-- [start:group_size]
model = Net()
saved = torch.optim.Adam(model.parameters()).state_dict()  # 6 parameters

model.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))  # 8 parameters now
optimizer = torch.optim.Adam(model.parameters())
# --8<-- [end:group_size]

with raises(ValueError, "doesn't match the size"):
    # --8<-- [start:group_size_load]
    optimizer.load_state_dict(saved)
    # --8<-- [end:group_size_load]

with raises(ValueError, "different number of parameter groups"):
    # --8<-- [start:group_count]
    model = Net()
    saved = torch.optim.Adam(model.parameters()).state_dict()  # one group

    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    optimizer.load_state_dict(saved)
    # --8<-- [end:group_count]

# --8<-- [start:order_silent]
class NetReordered(Net):
    """The same layers, but fc2 is created before fc1: parameters() yields a new order."""

    def __init__(self):
        nn.Module.__init__(self)
        self.fc2 = nn.Linear(8, 8)
        self.fc1 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)


old = Net()
old_optimizer = torch.optim.Adam(old.parameters())
train(old, old_optimizer)

new = NetReordered()
new.load_state_dict(old.state_dict())  # by name: fine
new_optimizer = torch.optim.Adam(new.parameters())
new_optimizer.load_state_dict(old_optimizer.state_dict())  # by position: no error...

# ...but fc1's weight now carries the moments that belonged to fc2's weight.
assert torch.equal(new_optimizer.state[new.fc1.weight]["exp_avg"],
                   old_optimizer.state[old.fc2.weight]["exp_avg"])
train(new, new_optimizer)  # trains on, with the wrong moments
# --8<-- [end:order_silent]

with raises(RuntimeError, "must match the size"):
    # --8<-- [start:order_error]
    reversed_optimizer = torch.optim.Adam(list(new.parameters())[::-1])
    reversed_optimizer.load_state_dict(old_optimizer.state_dict())
    train(new, reversed_optimizer)
    # --8<-- [end:order_error]

# --8<-- [start:order_fix]
import re


def plain_name(name):
    """fc1.weight for module.fc1.weight (DDP, DataParallel) or _orig_mod.fc1.weight (compile)."""
    return re.sub(r"(^|\.)(module|_orig_mod)\.", r"\1", name)


def load_by_name(optimizer, saved):
    """Load an optimizer state dict by parameter name, not by position.

    Both optimizers must be built from model.named_parameters() (torch 2.6 or later records
    the names as `param_names`), with the same number of groups. Parameters new since the
    save start without state; saved ones that are gone are dropped; a saved moment whose
    shape differs from its parameter's is refused. Returns (new names, dropped names)."""
    groups = optimizer.param_groups
    for where, gs in (("this optimizer", groups), ("the checkpoint", saved["param_groups"])):
        if any("param_names" not in g for g in gs):
            raise ValueError(f"{where} has no param_names: build the optimizer from "
                             "model.named_parameters() (torch 2.6 or later)")
    if len(groups) != len(saved["param_groups"]):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups in the checkpoint, "
                         f"{len(groups)} here: build the same groups first")
    by_name = {plain_name(name): saved["state"][i]
               for g in saved["param_groups"] for i, name in zip(g["params"], g["param_names"])
               if i in saved["state"]}
    state, new_groups, index, found = {}, [], 0, set()
    for group, saved_group in zip(groups, saved["param_groups"]):
        for p, name in zip(group["params"], group["param_names"]):
            entry = by_name.get(plain_name(name))
            if entry is not None:
                for key, value in entry.items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                        raise ValueError(f"{name}: saved {key} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(p.shape)}")
                state[index] = entry
                found.add(plain_name(name))
            index += 1
        hyperparameters = {k: v for k, v in saved_group.items() if k not in ("params", "param_names")}
        new_groups.append({**hyperparameters, "param_names": list(group["param_names"]),
                           "params": list(range(index - len(group["params"]), index))})
    optimizer.load_state_dict({"state": state, "param_groups": new_groups})
    names = [plain_name(n) for g in groups for n in g["param_names"]]
    return [n for n in names if n not in found], sorted(set(by_name) - found)


old_optimizer = torch.optim.Adam(old.named_parameters())  # the state dict records the names
train(old, old_optimizer)
saved = old_optimizer.state_dict()
print(saved["param_groups"][0]["param_names"])

new = NetReordered()
new.load_state_dict(old.state_dict())
new_optimizer = torch.optim.Adam(new.named_parameters())
print(load_by_name(new_optimizer, saved))  # nothing new, nothing dropped
assert torch.equal(new_optimizer.state[new.fc1.weight]["exp_avg"],
                   old_optimizer.state[old.fc1.weight]["exp_avg"])  # each on its own parameter
# --8<-- [end:order_fix]

# --8<-- [start:prefix_module]
wrapped = nn.DataParallel(Net())  # DistributedDataParallel adds the same prefix
torch.save(wrapped.state_dict(), "wrapped.pt")
print(list(wrapped.state_dict())[:2])
state_dict = torch.load("wrapped.pt", map_location="cpu", weights_only=True)
model = Net()
# --8<-- [end:prefix_module]

with raises(RuntimeError, "Missing key(s)"):
    # --8<-- [start:prefix_module_load]
    model.load_state_dict(state_dict)
    # --8<-- [end:prefix_module_load]

# --8<-- [start:prefix_strict_false]
before = model.fc1.weight.clone()
result = model.load_state_dict(state_dict, strict=False)  # no error...
print(len(result.missing_keys), "missing,", len(result.unexpected_keys), "unexpected")
assert torch.equal(model.fc1.weight, before)  # ...and nothing was loaded
# --8<-- [end:prefix_strict_false]

# --8<-- [start:prefix_fix]
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

consume_prefix_in_state_dict_if_present(state_dict, "module.")  # in place; no-op if absent
model.load_state_dict(state_dict)
# (with a GPU present, DataParallel has moved its module to the first GPU)
assert torch.equal(model.fc1.weight, wrapped.module.fc1.weight.cpu())
# --8<-- [end:prefix_fix]

# --8<-- [start:prefix_compile]
compiled = torch.compile(Net())  # nothing is compiled until the first call
print(list(compiled.state_dict())[:2])

torch.save(compiled._orig_mod.state_dict(), "plain_keys.pt")  # save the module inside
Net().load_state_dict(torch.load("plain_keys.pt", weights_only=True))

state_dict = compiled.state_dict()  # or strip the prefix from a file already written
consume_prefix_in_state_dict_if_present(state_dict, "_orig_mod.")
Net().load_state_dict(state_dict)
# --8<-- [end:prefix_compile]

# --8<-- [start:lr_overwritten]
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train(model, optimizer)
torch.save(optimizer.state_dict(), "optimizer.pt")

# Resume with a smaller learning rate:
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
optimizer.load_state_dict(torch.load("optimizer.pt", weights_only=True))
print(optimizer.param_groups[0]["lr"])
# --8<-- [end:lr_overwritten]

# --8<-- [start:lr_fix]
for group in optimizer.param_groups:
    group["lr"] = 1e-4  # after loading
print(optimizer.param_groups[0]["lr"])
# --8<-- [end:lr_fix]

# --8<-- [start:scheduler_setup]
def build():
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, optimizer


def make_schedulers(optimizer):
    return [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=10)]


model, optimizer = build()
schedulers = make_schedulers(optimizer)
for _ in range(5):
    train(model, optimizer, steps=1)
    schedulers[0].step()
saved = {"optimizer": optimizer.state_dict(), "scheduler": schedulers[0].state_dict()}

schedulers[0].step()
expected_lr = optimizer.param_groups[0]["lr"]  # the uninterrupted run, one step later
print(f"uninterrupted: {expected_lr:.2e}")
# --8<-- [end:scheduler_setup]

# --8<-- [start:scheduler_wrong_order]
model, optimizer = build()
optimizer.load_state_dict(saved["optimizer"])  # loaded before the scheduler exists...
scheduler = make_schedulers(optimizer)[0]  # ...whose constructor resets the lr
scheduler.load_state_dict(saved["scheduler"])
scheduler.step()
print(f"wrong order:   {optimizer.param_groups[0]['lr']:.2e}")
# --8<-- [end:scheduler_wrong_order]

# --8<-- [start:scheduler_right_order]
model, optimizer = build()
scheduler = make_schedulers(optimizer)[0]  # build both first,
optimizer.load_state_dict(saved["optimizer"])  # then load both
scheduler.load_state_dict(saved["scheduler"])
scheduler.step()
print(f"right order:   {optimizer.param_groups[0]['lr']:.2e}")
assert optimizer.param_groups[0]["lr"] == expected_lr
# --8<-- [end:scheduler_right_order]

# --8<-- [start:lambda_lr]
def warmup(step):
    return min(1.0, (step + 1) / 10)


results = {}
for order in ("wrong", "right"):
    model, optimizer = build()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
    for _ in range(5):
        train(model, optimizer, steps=1)
        scheduler.step()
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    expected_lr = optimizer.param_groups[0]["lr"]

    model, optimizer = build()
    if order == "wrong":
        optimizer.load_state_dict(saved["optimizer"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
        optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    results[order] = optimizer.param_groups[0]["lr"]
    print(f"{order} order: lr {results[order]:.2e} (saved: {expected_lr:.2e})")
assert results["right"] == expected_lr != results["wrong"]
# --8<-- [end:lambda_lr]

# --8<-- [start:capturable_setup]
# A checkpoint written by Adam(capturable=True) on a GPU: its param_groups say so.
model = Net()
saved = torch.optim.Adam(model.parameters(), capturable=True).state_dict()
print(saved["param_groups"][0]["capturable"])

# Loaded on a CPU machine into a plain Adam: the saved flag wins.
optimizer = torch.optim.Adam(model.parameters())
optimizer.load_state_dict(saved)
# --8<-- [end:capturable_setup]

with raises(AssertionError, "If capturable=True"):
    # --8<-- [start:capturable_error]
    train(model, optimizer)
    # --8<-- [end:capturable_error]

# --8<-- [start:capturable_fix]
for group in optimizer.param_groups:
    group["capturable"] = False  # after loading: this machine has no CUDA graphs
train(model, optimizer)
# --8<-- [end:capturable_fix]

# --8<-- [start:fused_flag]
model = Net()
plain = torch.optim.Adam(model.parameters())
train(model, plain)

fused = torch.optim.Adam(model.parameters(), fused=True)
fused.load_state_dict(plain.state_dict())
print("fused after loading:", fused.param_groups[0]["fused"])

for group in fused.param_groups:
    group["fused"] = True  # set it again after loading,
fused.load_state_dict(fused.state_dict())  # and cast `step` as the fused kernel wants it
train(model, fused)
p = model.fc1.weight
assert fused.state[p]["step"].device == p.device and fused.state[p]["step"].dtype == torch.float32
# --8<-- [end:fused_flag]

# --8<-- [start:truncated]
torch.save(model.state_dict(), "model.pt")
with open("model.pt", "rb") as f:
    data = f.read()
with open("truncated.pt", "wb") as f:  # what a save interrupted half-way leaves
    f.write(data[: len(data) // 2])
# --8<-- [end:truncated]

with raises(RuntimeError, "failed finding central directory"):
    # --8<-- [start:truncated_load]
    torch.load("truncated.pt", weights_only=True)
    # --8<-- [end:truncated_load]

# --8<-- [start:atomic_save]
import os


def save_atomically(obj, path):
    """Write to a temporary file next to `path`, then rename it over `path` in one step."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half


save_atomically(model.state_dict(), "model.pt")
model.load_state_dict(torch.load("model.pt", weights_only=True))
# --8<-- [end:atomic_save]

# Recipe: checkpoint files that survive crashes, corruption and untrusted sources: the
# page's examples, in page order. Page: docs/recipes/safe-checkpoints.md (and .ja.md).
# The functions they use are in checkpoint_files.py, which the page shows between them;
# run as a script, this file imports them (the import is not on the page).
import os

from checkpoint_files import (TMP_PREFIX, CheckpointError, atomic_write, clean_leftovers,
                              load_checkpoint, load_latest, save_checkpoint, set_hyperparameters)

# --8<-- [start:running_example]
import torch
import torch.nn as nn
import torch.nn.functional as F


def build(lr=1e-3, weight_decay=0.0):
    """Model, then the optimizer and the scheduler built on its parameters."""
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.9**epoch)
    return model, optimizer, scheduler


g = torch.Generator().manual_seed(0)
inputs, targets = torch.randn(64, 8, generator=g), torch.randint(0, 2, (64,), generator=g)


def train_one_epoch(model, optimizer):
    for x, y in zip(inputs.split(16), targets.split(16)):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def training_state(model, optimizer, scheduler, epoch):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch}


torch.manual_seed(0)
model, optimizer, scheduler = build(lr=1e-3, weight_decay=0.01)
# --8<-- [end:running_example]

# --8<-- [start:plain_save_loses]
torch.save(training_state(model, optimizer, scheduler, epoch=0), "checkpoint.pt")


class FailsHalfway:
    """Stands in for anything that stops torch.save midway: an error, a kill, a full disk."""

    def __reduce__(self):
        raise RuntimeError("interrupted")


state = training_state(model, optimizer, scheduler, epoch=1)
try:
    torch.save({**state, "extra": FailsHalfway()}, "checkpoint.pt")
except RuntimeError:
    pass

try:
    torch.load("checkpoint.pt", weights_only=True)
except RuntimeError as e:
    print(str(e).split(". ")[0])
# --8<-- [end:plain_save_loses]

# --8<-- [start:atomic_keeps]
atomic_write("checkpoint.pt", lambda f: torch.save(state, f))  # a good checkpoint

try:
    atomic_write("checkpoint.pt", lambda f: torch.save({**state, "extra": FailsHalfway()}, f))
except RuntimeError:
    pass

assert torch.load("checkpoint.pt", weights_only=True)["epoch"] == 1  # the old one, intact
assert not [n for n in os.listdir(".") if n.startswith(TMP_PREFIX)]  # nothing left over
# --8<-- [end:atomic_keeps]

# --8<-- [start:save_loop]
for epoch in range(5):
    train_one_epoch(model, optimizer)
    scheduler.step()
    save_checkpoint(training_state(model, optimizer, scheduler, epoch), "checkpoints",
                    step=epoch, keep=3)

print(sorted(os.listdir("checkpoints")))
print(open("checkpoints/latest").read().strip())
# --8<-- [end:save_loop]

# --8<-- [start:clean_up]
# What a save killed midway leaves: a temporary file (and the older files, intact).
with open("checkpoints/.tmp-ckpt-00000005.pt.k3x9q1", "wb") as f:
    f.write(b"PK\x03\x04 half a checkpoint")

print(clean_leftovers("checkpoints"))
# --8<-- [end:clean_up]

# --8<-- [start:resume]
def resume(directory):
    """Start-up: clean up, load the newest good checkpoint, rebuild everything from it."""
    clean_leftovers(directory)
    state, path = load_latest(directory, keys=("model", "optimizer", "scheduler", "epoch"))
    model, optimizer, scheduler = build()
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
    return model, optimizer, scheduler, start_epoch, path
# --8<-- [end:resume]

# --8<-- [start:resume_demo]
model2, optimizer2, scheduler2, start_epoch, path = resume("checkpoints")
print(path, start_epoch)
assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
# --8<-- [end:resume_demo]

try:
    # --8<-- [start:truncated_raw]
    import shutil

    shutil.copy("checkpoints/ckpt-00000004.pt", "truncated.pt")
    os.truncate("truncated.pt", os.path.getsize("truncated.pt") - 100)  # the last 100 bytes lost

    torch.load("truncated.pt", weights_only=True)
    # --8<-- [end:truncated_raw]
except OSError as e:  # the page shows this error under the block
    print(f"{type(e).__name__}: {e}")

try:
    # --8<-- [start:truncated_clear]
    load_checkpoint("truncated.pt")
    # --8<-- [end:truncated_clear]
except CheckpointError as e:  # the page shows this error under the block
    print(f"{type(e).__name__}: {e}")

# --8<-- [start:flipped_byte]
shutil.copy("checkpoints/ckpt-00000004.pt", "flipped.pt")
shutil.copy("checkpoints/ckpt-00000004.pt.sha256", "flipped.pt.sha256")

weight = model.state_dict()["0.weight"]
with open("flipped.pt", "r+b") as f:
    offset = f.read().find(weight.numpy().tobytes())  # where the tensor's bytes are
    f.seek(offset + 3)
    byte = f.read(1)[0]
    f.seek(offset + 3)
    f.write(bytes([byte ^ 0x40]))  # one bit of one float

damaged = torch.load("flipped.pt", weights_only=True)  # loads without a word...
assert not torch.equal(damaged["model"]["0.weight"], weight)  # ...but the weights differ
# --8<-- [end:flipped_byte]

try:
    # --8<-- [start:flipped_checksum]
    load_checkpoint("flipped.pt")
    # --8<-- [end:flipped_checksum]
except CheckpointError as e:  # the page shows this error under the block
    print(f"{type(e).__name__}: {e}")

# --8<-- [start:fallback]
# The newest checkpoint is damaged on disk:
os.truncate("checkpoints/ckpt-00000004.pt", 1000)

model2, optimizer2, scheduler2, start_epoch, path = resume("checkpoints")
print(path, start_epoch)
# --8<-- [end:fallback]

# --8<-- [start:untrusted]
import pickle


class Payload:
    """Unpickling this calls open(..., "w"): it would create a file. Any call would do."""

    def __reduce__(self):
        return (open, ("payload_ran.txt", "w"))


torch.save({"model": model.state_dict(), "extra": Payload()}, "untrusted.pt")

try:
    torch.load("untrusted.pt", weights_only=True)
except pickle.UnpicklingError as e:
    print(next(line.strip() for line in str(e).splitlines() if "Unsupported global" in line))

assert not os.path.exists("payload_ran.txt")  # refused before anything was called
# --8<-- [end:untrusted]

# --8<-- [start:safetensors_weights]
from safetensors.torch import load_file, save_file

save_file(model.state_dict(), "model.safetensors")
weights = load_file("model.safetensors")
assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
# --8<-- [end:safetensors_weights]

try:
    # --8<-- [start:safetensors_optimizer]
    save_file(optimizer.state_dict(), "optimizer.safetensors")
    # --8<-- [end:safetensors_optimizer]
except ValueError as e:  # the page shows this error under the block
    print(f"{type(e).__name__}: {e}")

# --8<-- [start:hyperparameters_overwritten]
state, path = load_latest("checkpoints", log=lambda message: None)

# A new learning rate and weight decay given to the constructors...
model2, optimizer2, scheduler2 = build(lr=3e-4, weight_decay=0.1)
model2.load_state_dict(state["model"])
optimizer2.load_state_dict(state["optimizer"])
scheduler2.load_state_dict(state["scheduler"])

# ...are gone: load_state_dict restored the saved ones.
group = optimizer2.param_groups[0]
assert group["lr"] == state["optimizer"]["param_groups"][0]["lr"] != 3e-4
assert group["weight_decay"] == 0.01
print(f"lr {group['lr']:.4g}, weight_decay {group['weight_decay']}")
# --8<-- [end:hyperparameters_overwritten]

# --8<-- [start:hyperparameters_naive]
group["lr"] = 3e-4
train_one_epoch(model2, optimizer2)
scheduler2.step()
print(f"lr {group['lr']:.4g}")  # LambdaLR recomputed it from the saved base_lrs
# --8<-- [end:hyperparameters_naive]

# --8<-- [start:hyperparameters_set_demo]
model2, optimizer2, scheduler2, start_epoch, path = resume("checkpoints")
set_hyperparameters(optimizer2, scheduler2, lr=3e-4, weight_decay=0.1)

for epoch in range(start_epoch, start_epoch + 2):
    train_one_epoch(model2, optimizer2)
    scheduler2.step()
    group = optimizer2.param_groups[0]
    assert abs(group["lr"] - 3e-4 * 0.9 ** (epoch + 1)) < 1e-12
    assert group["weight_decay"] == 0.1
    print(f"epoch {epoch}: lr {group['lr']:.4g}, weight_decay {group['weight_decay']}")

# Saved as usual, the new values come back with the next resume.
save_checkpoint(training_state(model2, optimizer2, scheduler2, epoch), "checkpoints", step=epoch)
model3, optimizer3, scheduler3, start_epoch, path = resume("checkpoints")
assert optimizer3.param_groups[0]["lr"] == optimizer2.param_groups[0]["lr"]
assert optimizer3.param_groups[0]["weight_decay"] == 0.1 and scheduler3.base_lrs == [3e-4]
# --8<-- [end:hyperparameters_set_demo]

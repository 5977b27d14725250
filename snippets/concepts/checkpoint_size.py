# Concept: what makes a checkpoint file big, and how to keep the files small.
# Page: docs/concepts/checkpoint-size.md (and .ja.md). Sections are embedded in page order;
# the page shows some raising, wrapped here in try/except (not on the page) so that the file
# runs on as a script.

# --8<-- [start:setup]
import io

import torch
import torch.nn as nn


def saved_size(obj):
    """Bytes that torch.save writes for `obj` (to memory: the same bytes as to a file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


def build(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10)).to(dtype)


def train_step(model, optimizer, params=None):
    x = torch.randn(32, 256, dtype=next(model.parameters()).dtype)
    model(x).float().square().mean().backward()
    for p, master in zip(model.parameters(), params or []):
        master.grad = p.grad.float()  # mixed precision: the fp32 copy gets the gradient
    optimizer.step()
    optimizer.zero_grad()


model = build()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
train_step(model, optimizer)  # Adam creates its state at the first step
n_params = sum(p.numel() for p in model.parameters())

weights = saved_size(model.state_dict())
full = saved_size({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
print(f"parameters: {n_params:,}")
print(f"model only:        {weights:,} bytes ({weights / n_params:.2f} bytes per parameter)")
print(f"model + Adam:      {full:,} bytes ({full / n_params:.2f} bytes per parameter)")
# --8<-- [end:setup]

# --8<-- [start:mixed_precision]
# A bf16 model trained with fp32 master weights: Adam updates the fp32 copies.
model16 = build(torch.bfloat16)
master = [p.detach().float().requires_grad_() for p in model16.parameters()]
optimizer16 = torch.optim.Adam(master, lr=1e-3)
train_step(model16, optimizer16, master)
ema = {k: v.detach().clone() for k, v in model.state_dict().items()}  # an fp32 EMA copy
for k, v in model.state_dict().items():
    ema[k].lerp_(v, 0.001)  # ema = 0.999 * ema + 0.001 * weights, after each step

sizes = {
    "bf16 weights only": saved_size(model16.state_dict()),
    "bf16 + fp32 master + Adam": saved_size({"model": model16.state_dict(), "master": master,
                                             "optimizer": optimizer16.state_dict()}),
    "fp32 + Adam + EMA": saved_size({"model": model.state_dict(),
                                     "optimizer": optimizer.state_dict(),
                                     "ema": ema}),
}
for name, size in sizes.items():
    print(f"{name:26} {size:>9,} bytes ({size / n_params:5.2f} bytes per parameter)")
# --8<-- [end:mixed_precision]

# --8<-- [start:views]
big = torch.zeros(1000, 1000)  # 4,000,000 bytes of float32
row = big[0]  # a view: 1,000 values, but it shares big's storage

print(f"big:         {saved_size(big):>9,} bytes")
print(f"row:         {saved_size(row):>9,} bytes")  # the whole storage is written
print(f"row.clone(): {saved_size(row.clone()):>9,} bytes")  # only its own 1,000 values
# --8<-- [end:views]

# --8<-- [start:views_in_state]
# The same happens with any view in a checkpoint: a slice kept "for later", an embedding's
# first rows, the parts that split() or chunk() return.
parts = big.chunk(4)  # four views of big's storage
print(f"chunks:          {saved_size(list(parts)):>9,} bytes")  # storage written once
print(f"cloned chunks:   {saved_size([p.clone() for p in parts]):>9,} bytes")
# --8<-- [end:views_in_state]

# --8<-- [start:safetensors_export]
from safetensors.torch import load_file, save_file

# For inference, or to publish: the weights alone, in bf16, without pickle.
export = {name: t.to(torch.bfloat16).contiguous() for name, t in model.state_dict().items()}
save_file(export, "model.safetensors")

import os

exported = os.path.getsize("model.safetensors")
print(f"model + Adam (torch.save): {full:>9,} bytes")
print(f"model.safetensors (bf16):  {exported:>9,} bytes ({full / exported:.1f}x smaller)")
loaded = load_file("model.safetensors")
print(all(torch.equal(loaded[k], export[k]) for k in export))
# --8<-- [end:safetensors_export]

try:
    # --8<-- [start:safetensors_view]
    save_file({"column": big[:, 0]}, "column.safetensors")  # a column of big: not contiguous
    # --8<-- [end:safetensors_view]
except ValueError as e:
    print(f"{type(e).__name__}: {e}")

# --8<-- [start:safetensors_shared]
from safetensors.torch import save_model

# Tied weights: the output layer reuses the embedding's matrix, as many language models do.
class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 100, bias=False)
        self.head.weight = self.embed.weight


lm = TiedLM()
try:
    save_file(lm.state_dict(), "lm.safetensors")
except RuntimeError as e:
    print(str(e).split(": [")[0].strip())  # the message goes on with the names

save_model(lm, "lm.safetensors")  # one name per storage
print(list(load_file("lm.safetensors")))
print(saved_size(lm.state_dict()) < saved_size({k: v.clone() for k, v in lm.state_dict().items()}))
# --8<-- [end:safetensors_shared]

# --8<-- [start:rotation]
from checkpoint_files import load_latest, save_checkpoint

# Keep the last 2: each save writes the new file completely, points `latest` at it, and
# only then deletes the files older than the last 2.
for step in range(100, 500, 100):
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    save_checkpoint(state, "checkpoints", step, keep=2)
print(sorted(os.listdir("checkpoints")))
# --8<-- [end:rotation]


# --8<-- [start:rotation_failure]
class FailsHalfway:
    """Stands in for anything that stops torch.save midway: an error, a bug in a callback."""

    def __reduce__(self):
        raise RuntimeError("interrupted")


# A save that fails deletes nothing: the last good checkpoint stays.
try:
    save_checkpoint({"step": 500, "broken": FailsHalfway()}, "checkpoints", 500, keep=2)
except RuntimeError as e:
    print(f"save failed: {e}")
print(sorted(os.listdir("checkpoints")))
state, path = load_latest("checkpoints")
print(path, state["step"])
# --8<-- [end:rotation_failure]

# --8<-- [start:full_disk_error]
# On Linux, /dev/full is a device on which every write fails as on a full disk (errno 28).
try:
    torch.save(state, "/dev/full")
except Exception as e:  # noqa: BLE001 - we print what a full disk gives
    print(f"{type(e).__name__}: {e}")
    print("an OSError:", isinstance(e, OSError))
# --8<-- [end:full_disk_error]

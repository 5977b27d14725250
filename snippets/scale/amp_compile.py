# Recipe: checkpoints with mixed precision (GradScaler) and torch.compile.
# Page: docs/scale/amp-compile.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import torch
import torch.nn as nn
import torch.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"

# Synthetic regression data with large targets: float16 gradients overflow at first.
g = torch.Generator().manual_seed(0)
inputs = torch.randn(512, 20, generator=g) * 10
targets = torch.randn(512, 2, generator=g) * 100


def build():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device)
    return model, optimizer, scaler


def train(model, optimizer, scaler, steps):
    for step in steps:
        i = step % 16 * 32
        x, y = inputs[i:i + 32].to(device), targets[i:i + 32].to(device)
        optimizer.zero_grad()
        with torch.autocast(device, dtype=torch.float16):
            loss = F.mse_loss(model(x), y, reduction="sum")
        scaler.scale(loss).backward()  # gradients of loss * scale
        scaler.step(optimizer)  # unscales; skips the step if a gradient is inf or NaN
        scaler.update()  # a skipped step halves the scale


def adam_steps(optimizer):
    """How many updates Adam has made (skipped steps do not count)."""
    return int(optimizer.state[optimizer.param_groups[0]["params"][0]]["step"])


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
# --8<-- [end:setup]


# --8<-- [start:fresh_scaler]
print(torch.amp.GradScaler(device).state_dict())
# --8<-- [end:fresh_scaler]


# --8<-- [start:train_and_save]
model, optimizer, scaler = build()
train(model, optimizer, scaler, range(0, 30))
torch.save({"model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),  # a dict of floats and ints
            "step": 30}, "amp_checkpoint.pt")
assert scaler.get_scale() < 65536.0 and adam_steps(optimizer) < 30  # it skipped steps

train(model, optimizer, scaler, range(30, 60))  # the run that never stopped
reference = model
# --8<-- [end:train_and_save]


# --8<-- [start:resume_with_scaler]
def resume(with_scaler=True):
    model, optimizer, scaler = build()
    checkpoint = torch.load("amp_checkpoint.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if with_scaler:
        scaler.load_state_dict(checkpoint["scaler"])
    train(model, optimizer, scaler, range(checkpoint["step"], 60))
    return model, optimizer


model, optimizer = resume()
assert same_weights(model, reference)  # bitwise
# --8<-- [end:resume_with_scaler]


# --8<-- [start:resume_without_scaler]
saved = torch.load("amp_checkpoint.pt", weights_only=True)
at_save = int(saved["optimizer"]["state"][0]["step"])  # Adam's updates before the save

for with_scaler in (True, False):
    model, optimizer = resume(with_scaler)
    skipped = 30 - (adam_steps(optimizer) - at_save)
    print(f"with_scaler={with_scaler}: {skipped} of 30 steps skipped, "
          f"bitwise equal: {same_weights(model, reference)}")
# --8<-- [end:resume_without_scaler]


# --8<-- [start:compile_prefix]
model, optimizer, scaler = build()
# backend="eager": graph capture without code generation, so that this runs in a second.
compiled = torch.compile(model, backend="eager")
train(compiled, optimizer, scaler, range(0, 5))
print(type(compiled).__name__, list(compiled.state_dict()))
# --8<-- [end:compile_prefix]


# --8<-- [start:compile_shared]
assert compiled._orig_mod is model  # the wrapper holds the original module ...
assert all(a is b for a, b in zip(compiled.parameters(), model.parameters()))  # ... and its parameters

torch.save({"model": model.state_dict(),  # not compiled.state_dict()
            "optimizer": optimizer.state_dict(),  # built on the same parameters: no prefix
            "scaler": scaler.state_dict()}, "compiled_checkpoint.pt")
checkpoint = torch.load("compiled_checkpoint.pt", weights_only=True)
print(list(checkpoint["model"]))
# --8<-- [end:compile_shared]


# --8<-- [start:compile_load]
# Into a model that is not compiled:
plain, plain_optimizer, _ = build()
plain.load_state_dict(checkpoint["model"])
plain_optimizer.load_state_dict(checkpoint["optimizer"])

# Into a model that will be compiled: load first, then compile (or load into ._orig_mod).
model2, optimizer2, _ = build()
model2.load_state_dict(checkpoint["model"])
optimizer2.load_state_dict(checkpoint["optimizer"])
compiled2 = torch.compile(model2, backend="eager")

assert same_weights(plain, model) and same_weights(compiled2._orig_mod, model)
# --8<-- [end:compile_load]


# --8<-- [start:compile_prefixed_save]
torch.save(compiled.state_dict(), "prefixed.pt")  # what happens if the wrapper is saved
state = torch.load("prefixed.pt", weights_only=True)
# --8<-- [end:compile_prefixed_save]

try:
    # --8<-- [start:compile_prefixed_error]
    plain.load_state_dict(state)
    # --8<-- [end:compile_prefixed_error]
except RuntimeError as error:
    print(error)


# --8<-- [start:compile_prefixed_fix]
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

consume_prefix_in_state_dict_if_present(state, "_orig_mod.")  # in place
plain.load_state_dict(state)
assert same_weights(plain, model)
# --8<-- [end:compile_prefixed_fix]

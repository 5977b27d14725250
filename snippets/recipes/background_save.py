# Checkpoint without stopping training
# Page: docs/recipes/background-save.md (and .ja.md). Sections are embedded in page order.
# The library is snippets/lib/background_checkpoint.py (the page embeds it too), saved as
# background_checkpoint.py next to checkpoint_files.py.

# --8<-- [start:running_example]
import torch
import torch.nn.functional as F

from background_checkpoint import BackgroundCheckpointer
from checkpoint_files import clean_leftovers, load_latest


def make_run():
    """A small classifier and AdamW with two parameter groups of their own."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimizer = torch.optim.AdamW([
        {"params": model[0].parameters(), "lr": 1e-3, "weight_decay": 0.01},
        {"params": model[2].parameters(), "lr": 3e-4, "weight_decay": 0.0},
    ])
    return model, optimizer


def train_step(model, optimizer, step):
    """One step on a batch that depends on the step only (so a resume needs no data state)."""
    g = torch.Generator().manual_seed(step)
    x, y = torch.randn(64, 8, generator=g), torch.randint(2, (64,), generator=g)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def training_state(model, optimizer, step):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
# --8<-- [end:running_example]


# --8<-- [start:train]
def train(steps, checkpointer=None, every=10, stop_after=None):
    """Resume from the newest checkpoint that loads (or start), train to `steps`, and save
    every `every` steps in the background. `stop_after` stands in for a crash."""
    model, optimizer = make_run()
    start = 0
    if checkpointer is not None:
        clean_leftovers(checkpointer.directory)  # what a killed writer left
        state, path = load_latest(checkpointer.directory)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start = state["step"]
    for step in range(start + 1, steps + 1):
        train_step(model, optimizer, step)
        if checkpointer is not None and step % every == 0:
            checkpointer.save(training_state(model, optimizer, step), step)  # returns at once
        if step == stop_after:
            break
    return model, optimizer, start
# --8<-- [end:train]


# --8<-- [start:stopped_and_resumed]
def same(a, b):
    """Bitwise equal: the weights, and every tensor of the optimizer's state."""
    (ma, oa), (mb, ob) = a, b
    weights = all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(),
                                                    mb.state_dict().values()))
    sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
    moments = all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    groups = oa.state_dict()["param_groups"] == ob.state_dict()["param_groups"]
    return weights and moments and groups


with BackgroundCheckpointer("checkpoints", keep=3) as checkpointer:
    train(60, checkpointer, stop_after=35)   # saves steps 10, 20, 30; stops after step 35
    checkpointer.wait()                      # here: step 30 is on disk, `latest` names it
    model, optimizer, start = train(60, checkpointer)  # the next start: resumes, saves 40..60
uninterrupted = train(60)[:2]
print("resumed from step", start)
print("bitwise equal to the uninterrupted run:", same((model, optimizer), uninterrupted))
print("newest checkpoint:", load_latest("checkpoints")[1])
# --8<-- [end:stopped_and_resumed]


# --8<-- [start:memory]
state = training_state(model, optimizer, 60)
tensors = [*state["model"].values(),
           *(t for s in state["optimizer"]["state"].values() for t in s.values())]
print("tensors in the state:", len(tensors))
print("bytes of the state's tensors:", sum(t.numel() * t.element_size() for t in tensors))
print("bytes of staging memory:     ", checkpointer.staging_bytes)
print("padded to 64 bytes each:     ", sum(-(-t.numel() * t.element_size() // 64) * 64
                                          for t in tensors))
# --8<-- [end:memory]

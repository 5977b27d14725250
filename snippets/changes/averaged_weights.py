# Recipe: averaged weights (EMA and SWA with torch.optim.swa_utils) in a checkpoint.
# Page: docs/changes/averaged-weights.md (and .ja.md). Sections are embedded in page order.
# The section the page shows raising is wrapped in try/except here, so that the file runs on.

# --8<-- [start:setup]
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn

# The site's checkpoint files (lib/checkpoint_files.py): atomic saves, clear load errors.
from checkpoint_files import atomic_write, load_checkpoint, load_latest, save_checkpoint

# Synthetic regression data in a fixed order: 8 batches of 16 samples.
g = torch.Generator().manual_seed(0)
features = torch.randn(128, 8, generator=g)
targets = features[:, :3].sum(dim=1, keepdim=True)
batches = list(zip(features.split(16), targets.split(16)))

TOTAL_STEPS, SWA_START = 30, 10  # SWA averages the weights from step 10 on


def make_model():
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))


def build():
    """Everything the run owns, in this order: model, optimizer, averages, schedulers."""
    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    # EMA of the weights and of the BatchNorm buffers; SWA: the equal average of the weights.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    swa = AveragedModel(model)
    scheduler = CosineAnnealingLR(optimizer, T_max=SWA_START, eta_min=2e-3)
    swa_scheduler = SWALR(optimizer, swa_lr=5e-3, anneal_epochs=10)
    return SimpleNamespace(model=model, optimizer=optimizer, ema=ema, swa=swa,
                           scheduler=scheduler, swa_scheduler=swa_scheduler, step=0)


def train(run, stop):
    while run.step < stop:
        x, y = batches[run.step % len(batches)]
        run.optimizer.zero_grad()
        F.mse_loss(run.model(x), y).backward()
        run.optimizer.step()
        run.ema.update_parameters(run.model)  # EMA: after every step
        if run.step >= SWA_START:
            run.swa.update_parameters(run.model)  # SWA: from SWA_START on
            run.swa_scheduler.step()
        else:
            run.scheduler.step()
        run.step += 1


def same(a, b):
    """Bitwise equal state dicts: parameters, buffers and, for an AveragedModel, n_averaged."""
    return all(torch.equal(x, y) for x, y in
               zip(a.state_dict().values(), b.state_dict().values(), strict=True))
# --8<-- [end:setup]


# --8<-- [start:uninterrupted]
reference = build()
train(reference, TOTAL_STEPS)
print(f"{reference.step} steps; n_averaged: EMA {int(reference.ema.n_averaged)}, "
      f"SWA {int(reference.swa.n_averaged)}")
# --8<-- [end:uninterrupted]


# --8<-- [start:training_state]
def training_state(run):
    """What a checkpoint needs to resume a run that averages its weights."""
    return {
        "model": run.model.state_dict(),  # the weights that train, not an average
        "optimizer": run.optimizer.state_dict(),
        "ema": run.ema.state_dict(),  # the averages with their n_averaged (and buffers)
        "swa": run.swa.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "swa_scheduler": run.swa_scheduler.state_dict(),
        "step": run.step,
    }
# --8<-- [end:training_state]


# --8<-- [start:save_run]
first = build()
train(first, 15)  # stop in the SWA phase, while SWALR still anneals the learning rate
save_checkpoint(training_state(first), "checkpoints", step=first.step)

state = training_state(first)
print(list(state["ema"]))
print(f"n_averaged: EMA {int(state['ema']['n_averaged'])}, SWA {int(state['swa']['n_averaged'])}")
# --8<-- [end:save_run]


# --8<-- [start:resume]
KEYS = ("model", "optimizer", "ema", "swa", "scheduler", "swa_scheduler", "step")


def resume(directory):
    """Build everything as at the start, then load each part from the newest checkpoint."""
    run = build()  # model, optimizer, AveragedModels, schedulers: all of them before any load
    state, path = load_latest(directory, keys=KEYS)
    if state is None:
        return run  # no checkpoint yet: start from the beginning
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.ema.load_state_dict(state["ema"])  # the averages and n_averaged
    run.swa.load_state_dict(state["swa"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.swa_scheduler.load_state_dict(state["swa_scheduler"])
    run.step = state["step"]
    return run
# --8<-- [end:resume]


# --8<-- [start:compare]
resumed = resume("checkpoints")
train(resumed, TOTAL_STEPS)
for part in ("model", "ema", "swa"):
    print(f"{part:5} bitwise equal: {same(getattr(resumed, part), getattr(reference, part))}")
assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]
# --8<-- [end:compare]


# --8<-- [start:averaged_as_model]
wrong = training_state(first)
wrong["model"] = first.ema.module.state_dict()  # the EMA saved as "the model"
save_checkpoint(wrong, "averaged-as-model", step=first.step)

diverged = resume("averaged-as-model")  # loads without an error...
train(diverged, TOTAL_STEPS)
gap = max((a - b).abs().max().item()
          for a, b in zip(diverged.model.parameters(), reference.model.parameters()))
print(f"model bitwise equal: {same(diverged.model, reference.model)}")
print(f"largest difference above 1e-3: {gap > 1e-3}")
# --8<-- [end:averaged_as_model]


# --8<-- [start:forgot_count]
weights_only = training_state(first)
weights_only["ema"] = first.ema.module.state_dict()  # the averaged weights, without n_averaged
weights_only["swa"] = first.swa.module.state_dict()
save_checkpoint(weights_only, "averages-without-count", step=first.step)


def resume_without_count(directory):
    run = build()
    state, _ = load_latest(directory, keys=KEYS)
    for part in ("model", "optimizer", "scheduler", "swa_scheduler"):
        getattr(run, part).load_state_dict(state[part])
    run.ema.module.load_state_dict(state["ema"])  # the weights come back, the count does not
    run.swa.module.load_state_dict(state["swa"])
    run.step = state["step"]
    return run


restarted = resume_without_count("averages-without-count")
print(f"n_averaged after loading: EMA {int(restarted.ema.n_averaged)}, "
      f"SWA {int(restarted.swa.n_averaged)}")
train(restarted, TOTAL_STEPS)
for part in ("ema", "swa"):
    print(f"{part} weights bitwise equal: "
          f"{same(getattr(restarted, part).module, getattr(reference, part).module)}")
print(f"SWA averaged {int(restarted.swa.n_averaged)} models instead of "
      f"{int(reference.swa.n_averaged)}")
# --8<-- [end:forgot_count]


# --8<-- [start:restore_count]
def restore_count(averaged, updates):
    """For a checkpoint saved without n_averaged: set the number of updates made before it."""
    averaged.n_averaged.fill_(updates)
# --8<-- [end:restore_count]


# --8<-- [start:restore_count_check]
repaired = resume_without_count("averages-without-count")
restore_count(repaired.ema, repaired.step)  # one EMA update per step
restore_count(repaired.swa, repaired.step - SWA_START)  # one SWA update per step from SWA_START
train(repaired, TOTAL_STEPS)
assert same(repaired.ema, reference.ema) and same(repaired.swa, reference.swa)
# --8<-- [end:restore_count_check]


# --8<-- [start:into_plain_model]
state, path = load_latest("checkpoints")
plain = make_model()
# --8<-- [end:into_plain_model]

try:
    # --8<-- [start:into_plain_model_error]
    plain.load_state_dict(state["ema"])  # the AveragedModel's state dict
    # --8<-- [end:into_plain_model_error]
except RuntimeError as error:
    print(error)


# --8<-- [start:plain_state_dict]
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present


def plain_state_dict(averaged_state):
    """An AveragedModel's state dict as its model's: without n_averaged and "module."."""
    state = dict(averaged_state)  # a copy: the checkpoint keeps its keys
    state.pop("n_averaged", None)
    consume_prefix_in_state_dict_if_present(state, "module.")
    return state
# --8<-- [end:plain_state_dict]


# --8<-- [start:plain_state_dict_check]
plain.load_state_dict(plain_state_dict(state["ema"]))
assert same(plain, first.ema.module)
# --8<-- [end:plain_state_dict_check]


# --8<-- [start:batchnorm]
swa_bn, trained_bn = resumed.swa.module[1], resumed.model[1]
print("SWA's running_mean is the trained model's:",
      torch.equal(swa_bn.running_mean, trained_bn.running_mean))
update_bn(batches, resumed.swa)  # one pass over the data with the averaged weights
update_bn(batches, reference.swa)
print("changed by update_bn:", not torch.equal(swa_bn.running_mean, trained_bn.running_mean))
print("bitwise equal to the uninterrupted run's:", same(resumed.swa, reference.swa))
print("EMA's running_mean is the trained model's:",
      torch.equal(resumed.ema.module[1].running_mean, trained_bn.running_mean))
# --8<-- [end:batchnorm]


# --8<-- [start:old_checkpoint]
# The run as it was before it averaged: model, optimizer, cosine schedule; stopped at step 5.
torch.manual_seed(0)
model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = CosineAnnealingLR(optimizer, T_max=SWA_START, eta_min=2e-3)
for x, y in batches[:5]:
    optimizer.zero_grad()
    F.mse_loss(model(x), y).backward()
    optimizer.step()
    scheduler.step()
save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "step": 5}, "before-averaging", step=5)
# --8<-- [end:old_checkpoint]


# --8<-- [start:resume_before_averaging]
def resume_from_before_averaging(directory):
    """A checkpoint of the run before it averaged: no ema, swa or swa_scheduler in it."""
    run = build()
    state, _ = load_latest(directory, keys=("model", "optimizer", "scheduler", "step"))
    for part in ("model", "optimizer", "scheduler"):
        getattr(run, part).load_state_dict(state[part])
    run.step = state["step"]
    return run  # the averages start here: n_averaged is 0, their first update copies the model


added = resume_from_before_averaging("before-averaging")
# --8<-- [end:resume_before_averaging]

try:
    # --8<-- [start:swa_lr_error]
    train(added, TOTAL_STEPS)  # fails at SWA_START, at SWALR's first step
    # --8<-- [end:swa_lr_error]
except KeyError as error:
    print(repr(error))


# --8<-- [start:restore_swa_lr]
def restore_swa_lr(optimizer, swa_lr):
    """After loading an optimizer state saved before SWALR existed: put back the swa_lr that
    SWALR's constructor wrote into the param groups and load_state_dict replaced."""
    for group in optimizer.param_groups:
        group.setdefault("swa_lr", swa_lr)
# --8<-- [end:restore_swa_lr]


# --8<-- [start:restore_swa_lr_check]
added = resume_from_before_averaging("before-averaging")
restore_swa_lr(added.optimizer, swa_lr=5e-3)  # the swa_lr given to SWALR in build()
train(added, TOTAL_STEPS)
update_bn(batches, added.swa)  # as at the end of every SWA run (reference.swa had it above)
print(f"model bitwise equal: {same(added.model, reference.model)}")
print(f"swa   bitwise equal: {same(added.swa, reference.swa)}")  # SWA starts at step 10 in both
print(f"EMA averaged {int(added.ema.n_averaged)} updates instead of {int(reference.ema.n_averaged)}")
# --8<-- [end:restore_swa_lr_check]


# --8<-- [start:export]
import torch
from torch.optim.swa_utils import update_bn

from checkpoint_files import atomic_write


def export_averaged(averaged, path, loader=None):
    """Write the averaged weights as a plain state dict of the model, for inference.

    Pass the training `loader` for an average without BatchNorm statistics of its own
    (use_buffers=False, SWA's default): update_bn computes them first."""
    if loader is not None:
        update_bn(loader, averaged)
    state = averaged.module.state_dict()  # no "module." prefix, no n_averaged
    atomic_write(path, lambda f: torch.save(state, f))  # never a half-written file
# --8<-- [end:export]


# --8<-- [start:export_check]
export_averaged(reference.ema, "model-ema.pt")  # the EMA averaged its buffers too
export_averaged(reference.swa, "model-swa.pt", loader=batches)

model = make_model()
model.load_state_dict(load_checkpoint("model-ema.pt"))
model.eval()
reference.ema.eval()
print(list(load_checkpoint("model-ema.pt"))[:3])
print("same predictions as the EMA:", torch.equal(model(features), reference.ema(features)))
# --8<-- [end:export_check]

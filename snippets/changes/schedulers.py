# Recipe: learning-rate schedulers on resume: what each one saves, the order that restores it,
# and what to do when the plan changes. Page: docs/changes/schedulers.md (and .ja.md).
# Sections are embedded in page order; scripts/plots.py draws the page's plot from them.
from checkpoint_files import set_composite_lr, set_hyperparameters

# --8<-- [start:recipe]
import torch
from torch.optim import lr_scheduler


def build(model, total_steps):
    """The optimizer, then the scheduler built on it: the same code at start and on resume."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=total_steps)
    return optimizer, scheduler


def resume(model, path, total_steps):
    optimizer, scheduler = build(model, total_steps)  # 1. build both, as at the start
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(checkpoint["optimizer"])  # 2. then load both
    scheduler.load_state_dict(checkpoint["scheduler"])
    return optimizer, scheduler, checkpoint["step"]
# --8<-- [end:recipe]


# --8<-- [start:families]
import copy

import torch
from torch.optim import lr_scheduler as sched


def make_optimizer():
    """Adam on one tiny parameter: the learning rate does not depend on the gradients."""
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


SCHEDULERS = {  # name -> build(optimizer, last_epoch); the settings of a short run
    "StepLR": lambda o, e=-1: sched.StepLR(o, step_size=7, gamma=0.5, last_epoch=e),
    "MultiStepLR": lambda o, e=-1: sched.MultiStepLR(o, [6, 15], gamma=0.3, last_epoch=e),
    "CosineAnnealingLR": lambda o, e=-1: sched.CosineAnnealingLR(
        o, T_max=24, eta_min=1e-3, last_epoch=e),
    "CosineAnnealingWarmRestarts": lambda o, e=-1: sched.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, last_epoch=e),
    "OneCycleLR": lambda o, e=-1: sched.OneCycleLR(o, max_lr=0.1, total_steps=24, last_epoch=e),
    "CyclicLR": lambda o, e=-1: sched.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=4, last_epoch=e),
    "LambdaLR": lambda o, e=-1: sched.LambdaLR(o, lambda step: 0.9**step, last_epoch=e),
    "LinearLR": lambda o, e=-1: sched.LinearLR(
        o, start_factor=0.1, total_iters=12, last_epoch=e),
    "SequentialLR": lambda o, e=-1: sched.SequentialLR(o, [  # warm-up, then cosine
        sched.LinearLR(o, start_factor=0.1, total_iters=5),
        sched.CosineAnnealingLR(o, T_max=19)], milestones=[5], last_epoch=e),
    "ChainedScheduler": lambda o, e=-1: sched.ChainedScheduler([  # both apply at every step
        sched.LinearLR(o, start_factor=0.1, total_iters=5, last_epoch=e),
        sched.ExponentialLR(o, gamma=0.9, last_epoch=e)]),
    "ReduceLROnPlateau": lambda o, e=-1: sched.ReduceLROnPlateau(  # has no last_epoch
        o, factor=0.5, patience=2, cooldown=1),
}
STEPS, STOP = 24, 10  # the whole run, and where the interrupted one stops
# A validation loss for ReduceLROnPlateau: it improves, then stalls, again and again.
LOSSES = [1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.7, 0.6, 0.65, 0.66, 0.67, 0.68,
          0.5, 0.55, 0.56, 0.57, 0.58, 0.4, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5]


def train(optimizer, scheduler, start, stop):
    """Steps start..stop-1; returns (lr, beta1) that each optimizer step used."""
    used = []
    for step in range(start, stop):
        group = optimizer.param_groups[0]
        used.append((group["lr"], group["betas"][0]))
        optimizer.step()  # a real loop computes the loss and its gradients first
        if isinstance(scheduler, sched.ReduceLROnPlateau):
            scheduler.step(LOSSES[step])  # once per validation, with its metric
        else:
            scheduler.step()
    return used


def uninterrupted(name):
    optimizer = make_optimizer()
    return train(optimizer, SCHEDULERS[name](optimizer), 0, STEPS)


def checkpoint_at(name, stop=STOP):
    """Train to `stop`, save both state dicts to a file, and load them back from it."""
    optimizer = make_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    train(optimizer, scheduler, 0, stop)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               "checkpoint.pt")
    return torch.load("checkpoint.pt", weights_only=True)


def resumed(name, checkpoint, load_scheduler=True):
    """Build the optimizer, then the scheduler, then load both: the order of the recipe."""
    optimizer = make_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    optimizer.load_state_dict(checkpoint["optimizer"])
    if load_scheduler:
        scheduler.load_state_dict(copy.deepcopy(checkpoint["scheduler"]))
    return optimizer, scheduler


def curves(name):
    """(lr, beta1) of every step: uninterrupted; stopped at STOP and resumed; resumed
    without loading the scheduler's state."""
    reference = uninterrupted(name)
    checkpoint = checkpoint_at(name)
    optimizer, scheduler = resumed(name, checkpoint)
    resumed_run = reference[:STOP] + train(optimizer, scheduler, STOP, STEPS)
    optimizer, scheduler = resumed(name, checkpoint, load_scheduler=False)
    forgotten = reference[:STOP] + train(optimizer, scheduler, STOP, STEPS)
    return reference, resumed_run, forgotten
# --8<-- [end:families]


# --8<-- [start:state_keys]
import textwrap

for name in SCHEDULERS:
    state = checkpoint_at(name)["scheduler"]  # loaded with weights_only=True
    print(textwrap.fill(f"{name}: {', '.join(state)}", 96, subsequent_indent="    "))
# --8<-- [end:state_keys]


# --8<-- [start:resume_equals]
print(f"{'':28} {'resumed':>8} {'scheduler state not loaded':>27}")
for name in SCHEDULERS:
    reference, resumed_run, forgotten = curves(name)
    same = resumed_run == reference  # learning rate and beta1 of every step, exactly
    differ = next(i for i, (a, b) in enumerate(zip(forgotten, reference)) if a != b)
    print(f"{name:28} {'equal' if same else 'DIFFERS':>8} {f'differs from step {differ}':>27}")
# --8<-- [end:resume_equals]


# --8<-- [start:lambda_functions]
class Warmup:
    """A learning-rate factor as an object: its attributes are saved, its code is not."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, step):
        return min(1.0, (step + 1) / self.steps)


optimizer = make_optimizer()
scheduler = sched.LambdaLR(optimizer, [Warmup(steps=8)])
print(sched.LambdaLR(make_optimizer(), lambda step: 0.9**step).state_dict()["lr_lambdas"])
print(scheduler.state_dict()["lr_lambdas"])

# On resume, the scheduler computes with whatever function it was built with.
checkpoint = checkpoint_at("LambdaLR")
other = make_optimizer()
other_scheduler = sched.LambdaLR(other, lambda step: 0.5**step)  # not the saved run's function
other.load_state_dict(checkpoint["optimizer"])
other_scheduler.load_state_dict(checkpoint["scheduler"])  # loads without a word
assert train(other, other_scheduler, STOP, STEPS) != uninterrupted("LambdaLR")[STOP:]
# --8<-- [end:lambda_functions]


# --8<-- [start:momentum]
for name in ("OneCycleLR", "CyclicLR"):
    betas = {round(beta1, 4) for lr, beta1 in uninterrupted(name)}
    print(f"{name}: Adam's beta1 takes {len(betas)} values, from {min(betas)} to {max(betas)}")

# They live in the optimizer's param_groups: the optimizer's state dict restores them.
checkpoint = checkpoint_at("CyclicLR")
optimizer, scheduler = resumed("CyclicLR", checkpoint)
assert optimizer.param_groups[0]["betas"] == checkpoint["optimizer"]["param_groups"][0]["betas"]

# CyclicLR.load_state_dict takes a key out of the dict it is given: load each dict once.
state = checkpoint_at("CyclicLR")["scheduler"]
scheduler.load_state_dict(state)
try:
    scheduler.load_state_dict(state)
except KeyError as e:
    print(f"second load of the same dict: {type(e).__name__}: {e}")
# --8<-- [end:momentum]


# --8<-- [start:plateau]
state = checkpoint_at("ReduceLROnPlateau")["scheduler"]
print({key: state[key] for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")})


def first_reduction(load_scheduler):
    optimizer, scheduler = resumed("ReduceLROnPlateau", checkpoint_at("ReduceLROnPlateau"),
                                   load_scheduler)
    lrs = [lr for lr, beta1 in train(optimizer, scheduler, STOP, STEPS)]
    return STOP + next(i for i, lr in enumerate(lrs) if lr < lrs[0])  # first step at a lower lr


print(f"first step at a lower learning rate: {first_reduction(True)} with the state, "
      f"{first_reduction(False)} without")
# --8<-- [end:plateau]


# --8<-- [start:composite]
state = checkpoint_at("SequentialLR")["scheduler"]
for inner in state["_schedulers"]:  # one state dict per inner scheduler, in order
    print(sorted(key for key in inner if not key.startswith("_")))

# The inner states are loaded by position: build the inner schedulers in the same order.
optimizer = make_optimizer()
swapped = sched.SequentialLR(optimizer, [sched.CosineAnnealingLR(optimizer, T_max=19),
                                         sched.LinearLR(optimizer, start_factor=0.1,
                                                        total_iters=5)], milestones=[5])
optimizer.load_state_dict(checkpoint_at("SequentialLR")["optimizer"])
swapped.load_state_dict(state)  # no error...
after = train(optimizer, swapped, STOP, STEPS)
assert after != uninterrupted("SequentialLR")[STOP:]  # ...and a different schedule
# --8<-- [end:composite]


# --8<-- [start:build_order]
print(f"{'':28} {'lr after building':>18} {'first step':>11} {'later steps':>12}")
for name in SCHEDULERS:
    checkpoint = checkpoint_at(name)
    optimizer = make_optimizer()
    optimizer.load_state_dict(checkpoint["optimizer"])  # the optimizer loaded first...
    scheduler = SCHEDULERS[name](optimizer)  # ...then the scheduler built on it
    saved_lr = checkpoint["optimizer"]["param_groups"][0]["lr"]
    built_lr = optimizer.param_groups[0]["lr"]
    scheduler.load_state_dict(copy.deepcopy(checkpoint["scheduler"]))
    got = train(optimizer, scheduler, STOP, STEPS)
    expected = uninterrupted(name)[STOP:]
    print(f"{name:28} {'kept' if built_lr == saved_lr else 'reset':>18} "
          f"{'right' if got[0] == expected[0] else 'WRONG':>11} "
          f"{'right' if got[1:] == expected[1:] else 'WRONG':>12}")
# --8<-- [end:build_order]


# --8<-- [start:longer_cosine]
# Planned: 24 steps of cosine. Stepped past T_max, the learning rate climbs back up.
optimizer = make_optimizer()
scheduler = SCHEDULERS["CosineAnnealingLR"](optimizer)
lrs = [lr for lr, beta1 in train(optimizer, scheduler, 0, 40)]
print(f"lr at step 24: {lrs[24]:.4g} (eta_min), at step 34: {lrs[34]:.3g}")

# Extending it: T_max is in the state dict, so it is set after loading (a new T_max given to
# the constructor is overwritten by the saved one).
checkpoint = checkpoint_at("CosineAnnealingLR")
optimizer = make_optimizer()
scheduler = sched.CosineAnnealingLR(optimizer, T_max=40, eta_min=1e-3)
optimizer.load_state_dict(checkpoint["optimizer"])
scheduler.load_state_dict(checkpoint["scheduler"])
print(f"T_max after loading: {scheduler.T_max}")
scheduler.T_max = 40  # the new end: the rest of the curve stretches to it
lrs = [lr for lr, beta1 in train(optimizer, scheduler, STOP, 40)]
print(f"from step {STOP}: no jump: {lrs[0] == uninterrupted('CosineAnnealingLR')[STOP][0]}, "
      f"decreasing: {all(a > b for a, b in zip(lrs, lrs[1:]))}, "
      f"at eta_min when step 40 starts: {abs(scheduler.get_last_lr()[0] - 1e-3) < 1e-12}")
# --8<-- [end:longer_cosine]


# --8<-- [start:longer_onecycle]
checkpoint = checkpoint_at("OneCycleLR", stop=24)  # the cycle is over
optimizer, scheduler = resumed("OneCycleLR", checkpoint)
try:
    train(optimizer, scheduler, 24, 30)
except ValueError as e:
    print(f"{type(e).__name__}: {e}")
# --8<-- [end:longer_onecycle]


# --8<-- [start:longer_onecycle_fix]
def step_scheduler(scheduler):
    """Step a OneCycleLR until its last step; after that the learning rate stays where
    the cycle ended (its lowest value)."""
    if scheduler.last_epoch < scheduler.total_steps - 1:
        scheduler.step()
# --8<-- [end:longer_onecycle_fix]


# --8<-- [start:longer_onecycle_demo]
optimizer, scheduler = resumed("OneCycleLR", checkpoint_at("OneCycleLR"))
for step in range(STOP, 40):  # 16 steps more than planned
    optimizer.step()
    step_scheduler(scheduler)
group = optimizer.param_groups[0]
assert group["lr"] == group["min_lr"] and scheduler.last_epoch == scheduler.total_steps - 1
print(f"after 40 steps: lr {group['lr']:.3g} = min_lr, beta1 {group['betas'][0]}")
# --8<-- [end:longer_onecycle_demo]


# --8<-- [start:after_cycle_setup]
import torch.nn.functional as F

# A small regression model, trained with one OneCycleLR cycle of 100 steps and saved.
data = torch.Generator().manual_seed(0)
x = torch.randn(512, 8, generator=data)
y = torch.sin(x @ torch.randn(8, 2, generator=data))


def fit(model, optimizer, scheduler, steps):
    """Full-batch steps; the OneCycleLR stepped until its last step (step_scheduler above).
    Returns the loss after them."""
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        step_scheduler(scheduler)
    with torch.no_grad():
        return F.mse_loss(model(x), y).item()


torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
scheduler = sched.OneCycleLR(optimizer, max_lr=1e-2, total_steps=100)
loss_at_end = fit(model, optimizer, scheduler, 100)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict()}, "finished.pt")


def load_finished():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = sched.OneCycleLR(optimizer, max_lr=1e-2, total_steps=100)
    checkpoint = torch.load("finished.pt", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    return model, optimizer, scheduler
# --8<-- [end:after_cycle_setup]


# --8<-- [start:after_cycle_final_lr]
model, optimizer, scheduler = load_finished()
final_lr = optimizer.param_groups[0]["lr"]
print(f"lr at the end of the cycle: {final_lr:.1e} (max_lr / {1e-2 / final_lr:.3g})")
before = [p.detach().clone() for p in model.parameters()]
loss = fit(model, optimizer, scheduler, 200)  # 200 steps more, at that learning rate
change = max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before))
print(f"200 steps more: max |weight change| < 1e-4: {change < 1e-4}, "
      f"loss lower by 0.1% or more: {loss < 0.999 * loss_at_end}")
# --8<-- [end:after_cycle_final_lr]


# --8<-- [start:new_cycle]
def new_cycle(optimizer, total_steps, peak_scale=1.0, warmup=0.1):
    """A new OneCycleLR on a loaded optimizer: its own warm-up, from each group's previous
    peak learning rate times `peak_scale`. The old scheduler's state is not loaded into it."""
    peaks = [group.get("max_lr", group.get("initial_lr", group["lr"])) * peak_scale
             for group in optimizer.param_groups]
    return sched.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps, pct_start=warmup)
# --8<-- [end:new_cycle]


# --8<-- [start:new_cycle_demo]
for peak_scale in (1.0, 0.3):
    model, optimizer, _ = load_finished()  # the weights and Adam's moments of the cycle's end
    scheduler = new_cycle(optimizer, total_steps=200, peak_scale=peak_scale)
    loss = fit(model, optimizer, scheduler, 200)
    print(f"new cycle of 200 steps, peak x{peak_scale}: lower than before: {loss < loss_at_end}, "
          f"at most half of it: {loss <= 0.5 * loss_at_end}")
# --8<-- [end:new_cycle_demo]


# --8<-- [start:steps_per_epoch]
# Planned: 4 epochs of 6 batches. On resume a larger batch size gives 3 batches per epoch.
optimizer = make_optimizer()
scheduler = sched.OneCycleLR(optimizer, max_lr=0.1, epochs=4, steps_per_epoch=6)
train(optimizer, scheduler, 0, STOP)
checkpoint = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}

optimizer = make_optimizer()
scheduler = sched.OneCycleLR(optimizer, max_lr=0.1, epochs=4, steps_per_epoch=3)
optimizer.load_state_dict(checkpoint["optimizer"])
scheduler.load_state_dict(checkpoint["scheduler"])
print(f"total_steps after loading: {scheduler.total_steps}")  # the saved plan, in steps

# Counting epochs (3 more, now of 3 batches each), the run ends with the cycle unfinished.
train(optimizer, scheduler, STOP, STOP + 3 * 3)
print(f"after the 4th epoch: {scheduler.last_epoch} of {scheduler.total_steps} steps, "
      f"lr {optimizer.param_groups[0]['lr']:.3g} (min_lr "
      f"{optimizer.param_groups[0]['min_lr']:.3g})")

# Counting optimizer steps, the cycle ends where it was planned to: 5 batches more.
train(optimizer, scheduler, scheduler.last_epoch, scheduler.total_steps)
print(f"after {scheduler.total_steps} steps: {scheduler.last_epoch} of "
      f"{scheduler.total_steps} steps")
# --8<-- [end:steps_per_epoch]


# --8<-- [start:change_peak]
checkpoint = checkpoint_at("OneCycleLR")
optimizer, scheduler = resumed("OneCycleLR", checkpoint)
set_hyperparameters(optimizer, scheduler, lr=0.05)  # the new max_lr, after loading

reference = make_optimizer()  # a run planned with max_lr=0.05 from the start
reference_scheduler = sched.OneCycleLR(reference, max_lr=0.05, total_steps=24)
expected = train(reference, reference_scheduler, 0, STEPS)[STOP + 1:]
got = train(optimizer, scheduler, STOP, STEPS)[1:]  # from the first step after the change
print(f"equal to a run with max_lr=0.05: "
      f"{max(abs(a[0] - b[0]) for a, b in zip(got, expected)) < 1e-12}")
# --8<-- [end:change_peak]


# --8<-- [start:change_cyclic]
# CyclicLR: its bounds are in its state dict, so values given to the constructor are lost
# on load: set them after loading.
checkpoint = checkpoint_at("CyclicLR")
optimizer = make_optimizer()
scheduler = sched.CyclicLR(optimizer, base_lr=0.02, max_lr=0.2, step_size_up=4)
optimizer.load_state_dict(checkpoint["optimizer"])
scheduler.load_state_dict(checkpoint["scheduler"])
print(f"after loading: base_lrs {scheduler.base_lrs}, max_lrs {scheduler.max_lrs}")
scheduler.base_lrs, scheduler.max_lrs = [0.02], [0.2]

reference = make_optimizer()
reference_scheduler = sched.CyclicLR(reference, base_lr=0.02, max_lr=0.2, step_size_up=4)
expected = train(reference, reference_scheduler, 0, STEPS)[STOP + 1:]
got = train(optimizer, scheduler, STOP, STEPS)[1:]
print(f"equal to a run with the new bounds: "
      f"{max(abs(a[0] - b[0]) for a, b in zip(got, expected)) < 1e-12}")
# --8<-- [end:change_cyclic]


# --8<-- [start:change_composite]
for name in ("SequentialLR", "ChainedScheduler"):
    optimizer, scheduler = resumed(name, checkpoint_at(name))
    set_composite_lr(optimizer, scheduler, lr=0.05)  # after loading

    reference = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.05)
    expected = train(reference, SCHEDULERS[name](reference), 0, STEPS)[STOP:]
    got = train(optimizer, scheduler, STOP, STEPS)
    print(f"{name}: equal to a run with base 0.05: "
          f"{max(abs(a[0] - b[0]) for a, b in zip(got, expected)) < 1e-12}")
# --8<-- [end:change_composite]


# --8<-- [start:last_epoch_error]
optimizer = make_optimizer()  # a new optimizer: its groups have no "initial_lr"
try:
    sched.CosineAnnealingLR(optimizer, T_max=24, last_epoch=STOP - 1)
except KeyError as e:
    print(f"{type(e).__name__}: {e.args[0]}")
# --8<-- [end:last_epoch_error]


# --8<-- [start:last_epoch]
for name in SCHEDULERS:
    if name == "ReduceLROnPlateau":
        continue  # it has no last_epoch argument
    optimizer = make_optimizer()
    optimizer.load_state_dict(checkpoint_at(name)["optimizer"])  # the groups get "initial_lr"
    scheduler = SCHEDULERS[name](optimizer, STOP - 1)  # no scheduler state loaded
    same = train(optimizer, scheduler, STOP, STEPS) == uninterrupted(name)[STOP:]
    print(f"{name:28} {'equal' if same else 'DIFFERS'}")
# --8<-- [end:last_epoch]


# --8<-- [start:step_epoch]
import warnings

optimizer = make_optimizer()
scheduler = SCHEDULERS["LinearLR"](optimizer)
optimizer.load_state_dict(checkpoint_at("LinearLR")["optimizer"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    scheduler.step(STOP)  # jump to step 10
for warning in caught:
    print(f"{warning.category.__name__}: {warning.message}")
same = train(optimizer, scheduler, STOP, STEPS) == uninterrupted("LinearLR")[STOP:]
print(f"LinearLR after step({STOP}): {'equal' if same else 'DIFFERS'}")
# --8<-- [end:step_epoch]

# Recipe: resume with a different optimizer, batch size or number of processes.
# Page: docs/changes/optimizer.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# A small regression problem, the same on every run (no downloads).
g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
y = torch.sin(X @ torch.randn(8, 1, generator=g))


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))


def train(model, optimizer, steps, scheduler=None):
    """Full-batch steps; returns the loss before each step."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(X), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses


# The checkpoint we resume from: 300 steps of Adam.
model = build_model()
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
train(model, adam, 300)
torch.save({"model": model.state_dict(), "optimizer": adam.state_dict()}, "adam.pt")
# --8<-- [end:setup]


# --8<-- [start:adam_into_adamw]
checkpoint = torch.load("adam.pt", weights_only=True)
adamw = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
adamw.load_state_dict(checkpoint["optimizer"])
group = adamw.param_groups[0]
print(f"lr {group['lr']}, weight_decay {group['weight_decay']}, "
      f"decoupled_weight_decay {group['decoupled_weight_decay']}")
print("state of a parameter:", sorted(adamw.state[model[0].weight]))

# The other way: an AdamW checkpoint loaded into Adam.
adamw_file = torch.optim.AdamW(model.parameters(), weight_decay=0.1).state_dict()
adam_l2 = torch.optim.Adam(model.parameters(), weight_decay=1e-4)
adam_l2.load_state_dict(adamw_file)
group = adam_l2.param_groups[0]
print(f"Adam: weight_decay {group['weight_decay']}, "
      f"decoupled_weight_decay {group['decoupled_weight_decay']}")
# --8<-- [end:adam_into_adamw]


# --8<-- [start:adam_into_sgd]
sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sgd.load_state_dict(checkpoint["optimizer"])  # no error
group = sgd.param_groups[0]
print(f"lr {group['lr']}, betas {group['betas']}, 'momentum' in the group: {'momentum' in group}")
print("state of a parameter:", sorted(sgd.state[model[0].weight]))
# --8<-- [end:adam_into_sgd]


try:  # the page shows this section raising; the file runs on
    # --8<-- [start:adam_into_sgd_step]
    train(model, sgd, 1)
    # --8<-- [end:adam_into_sgd_step]
except KeyError as error:
    assert error.args == ("momentum",), error
else:
    raise AssertionError("expected KeyError: 'momentum'")


try:  # the page shows this section raising; the file runs on
    # --8<-- [start:sgd_into_adam]
    sgd_model = build_model()
    sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.05, momentum=0.9)
    train(sgd_model, sgd, 5)
    print("SGD's state of a parameter:", sorted(sgd.state[sgd_model[0].weight]))
    adam = torch.optim.Adam(sgd_model.parameters(), lr=1e-2)
    adam.load_state_dict(sgd.state_dict())
    # --8<-- [end:sgd_into_adam]
except KeyError as error:
    assert error.args == ("step",), error
else:
    raise AssertionError("expected KeyError: 'step'")


# --8<-- [start:switch_optimizer]
import torch


def switch_optimizer(new_optimizer, old_state_dict):
    """Take over Adam's moments and step from another optimizer's state dict (Adam or AdamW)
    and keep every hyperparameter of `new_optimizer` (lr, betas, weight_decay,
    decoupled_weight_decay). For any other pair, give the new optimizer fresh state and a
    learning-rate warm-up (`warm_up`)."""
    if not isinstance(new_optimizer, torch.optim.Adam):  # AdamW is an Adam too
        raise ValueError(f"{type(new_optimizer).__name__} does not use Adam's moments: start "
                         f"it with fresh state and warm_up()")
    keys = ["step", "exp_avg", "exp_avg_sq"]
    if any(group["amsgrad"] for group in new_optimizer.param_groups):
        keys.append("max_exp_avg_sq")
    new = new_optimizer.state_dict()
    old_sizes = [len(g["params"]) for g in old_state_dict["param_groups"]]
    new_sizes = [len(g["params"]) for g in new["param_groups"]]
    if old_sizes != new_sizes:
        raise ValueError(f"parameter groups of sizes {old_sizes} in the old optimizer's state, "
                         f"{new_sizes} in the new optimizer: build it over the same parameters, "
                         f"in the same groups and order")
    state = {}
    for index, param_state in old_state_dict["state"].items():
        missing = [k for k in keys if k not in param_state]
        if missing:
            raise ValueError(f"parameter {index}: the old optimizer's state has no {missing} "
                             f"(it has {sorted(param_state)}); nothing to carry over: start "
                             f"the new optimizer with fresh state and warm_up()")
        # Copies: load_state_dict keeps the tensors it is given when their device and dtype
        # already fit, and training would then change old_state_dict in place.
        state[index] = {k: param_state[k].clone() for k in keys}
    new["state"] = state
    new_optimizer.load_state_dict(new)  # casts to each parameter's device and dtype


def warm_up(optimizer, steps=10):
    """For fresh state: raise the learning rate from 1% to 100% over `steps` steps."""
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=steps)
# --8<-- [end:switch_optimizer]


# --8<-- [start:switch_demo]
checkpoint = torch.load("adam.pt", weights_only=True)
model = build_model()
model.load_state_dict(checkpoint["model"])
adamw = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
switch_optimizer(adamw, checkpoint["optimizer"])
group = adamw.param_groups[0]
print(f"lr {group['lr']}, weight_decay {group['weight_decay']}, "
      f"decoupled_weight_decay {group['decoupled_weight_decay']}")
saved = checkpoint["optimizer"]["state"]
print("moments and step taken over:",
      all(torch.equal(adamw.state[p][k], saved[i][k])
          for i, p in enumerate(model.parameters()) for k in saved[i]))
# --8<-- [end:switch_demo]


# --8<-- [start:same_quantities]
# The same gradients for three optimizers, each on its own copy of one parameter.
gen = torch.Generator().manual_seed(1)
grads = [torch.randn(4, generator=gen) for _ in range(20)]
start = torch.randn(4, generator=gen)
params = [nn.Parameter(start.clone()) for _ in range(3)]
optimizers = [torch.optim.Adam([params[0]], lr=1e-2),
              torch.optim.AdamW([params[1]], lr=1e-2, weight_decay=0.5),
              torch.optim.Adam([params[2]], lr=1e-2, weight_decay=0.5)]  # L2, not decoupled
for grad in grads:
    for p, opt in zip(params, optimizers):
        p.grad = grad.clone()
        opt.step()
adam_state, adamw_state, l2_state = (opt.state[p] for p, opt in zip(params, optimizers))
print("Adam and AdamW, same step, exp_avg, exp_avg_sq:",
      all(torch.equal(adam_state[k], adamw_state[k]) for k in adam_state))
print("Adam and AdamW, same parameters:", torch.equal(params[0], params[1]))
print("Adam and Adam with weight_decay (L2), same exp_avg:",
      torch.equal(adam_state["exp_avg"], l2_state["exp_avg"]))
# --8<-- [end:same_quantities]


# --8<-- [start:measure]
def after_switch(carry, warm, steps=30):
    """Switch the checkpoint's Adam to AdamW and return the losses of the next steps."""
    model = build_model()
    model.load_state_dict(checkpoint["model"])
    adamw = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    if carry:
        switch_optimizer(adamw, checkpoint["optimizer"])
    return train(model, adamw, steps, warm_up(adamw) if warm else None)


at_switch = after_switch(carry=True, warm=False, steps=1)[0]
runs = {"carried state": after_switch(carry=True, warm=False),
        "fresh state with warm-up": after_switch(carry=False, warm=True),
        "fresh state, no warm-up": after_switch(carry=False, warm=False)}
print("loss 10 steps after the switch, lowest first:",
      ", ".join(sorted(runs, key=lambda name: runs[name][10])))
for name, losses in runs.items():
    peak = max(losses) / at_switch
    print(f"{name:25} highest loss / loss at the switch: "
          f"{'under 2' if peak < 2 else 'over 10' if peak > 10 else 'between 2 and 10'}")
# --8<-- [end:measure]


# --8<-- [start:counters]
# Gradient accumulation: 4 micro-batches of 16 samples per optimizer step.
model = build_model()
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=100)
micro_batch, accumulate = 16, 4
for i, (xb, yb) in enumerate(zip(X.split(micro_batch), y.split(micro_batch))):
    (F.mse_loss(model(xb), yb) / accumulate).backward()
    if (i + 1) % accumulate == 0:
        adam.step()
        scheduler.step()
        adam.zero_grad()
print(f"samples {len(X)}, micro-batches {i + 1}, "
      f"Adam's step {int(adam.state[model[0].weight]['step'])}, "
      f"scheduler's last_epoch {scheduler.last_epoch}")
# --8<-- [end:counters]


# --8<-- [start:accumulation]
def three_steps(micro_batches):
    """Three optimizer steps over the first 64 samples, each split into `micro_batches`."""
    model = build_model()
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        adam.zero_grad()
        for xb, yb in zip(X[:64].chunk(micro_batches), y[:64].chunk(micro_batches)):
            (F.mse_loss(model(xb), yb) / micro_batches).backward()
        adam.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


one_batch, four_micro = three_steps(1), three_steps(4)
print("4 micro-batches vs 1 batch of 64, max |difference| < 1e-5:",
      bool((one_batch - four_micro).abs().max() < 1e-5))
# --8<-- [end:accumulation]


# --8<-- [start:bias_correction]
def update_size(step_written):
    """Adam after 40 steps of a constant gradient; `step` overwritten; size of the next update."""
    p = nn.Parameter(torch.zeros(1))
    adam = torch.optim.Adam([p], lr=1e-2)
    for _ in range(40):
        p.grad = torch.ones(1)
        adam.step()
    adam.state[p]["step"].fill_(step_written)
    before = p.detach().clone()
    adam.step()
    return (p.detach() - before).abs().item()


kept = update_size(40)
print(f"step kept at 40: update / lr = {kept / 1e-2:.1f}")
print(f"step halved to 20 (counted at twice the batch size): "
      f"update / the right one = {update_size(20) / kept:.1f}")
print(f"step doubled to 80 (counted at half the batch size): "
      f"update / the right one = {update_size(80) / kept:.1f}")
# --8<-- [end:bias_correction]


# --8<-- [start:position]
import math

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """One epoch's order, from (seed, epoch), started `start` samples in and split among
    `num_replicas` processes. The position is counted in samples, so that the batch size,
    the accumulation and the number of processes may change at a resume."""

    def __init__(self, num_samples, seed, epoch, start=0, rank=0, num_replicas=1):
        self.num_samples, self.seed, self.epoch = num_samples, seed, epoch
        self.start, self.rank, self.num_replicas = start, rank, num_replicas

    def _rest(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        rest = torch.randperm(self.num_samples, generator=g)[self.start:]
        pad = -len(rest) % self.num_replicas  # as DistributedSampler: every rank gets as many
        return torch.cat([rest, rest[:pad]])

    def __iter__(self):
        return iter(self._rest()[self.rank::self.num_replicas].tolist())

    def __len__(self):
        return len(self._rest()) // self.num_replicas


def steps_left_in_epoch(num_samples, samples_done, samples_per_step):
    """samples_per_step = batch size x accumulation x number of processes."""
    return math.ceil((num_samples - samples_done) / samples_per_step)


def cosine_in_samples(optimizer, base_lr, samples_done, total_samples, samples_per_step):
    """Cosine decay over the samples of the whole run, rebuilt at every resume (not loaded):
    the curve is the same whatever the batch size or the number of processes."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = base_lr

    def factor(step):  # optimizer steps since this resume
        seen = min(samples_done + step * samples_per_step, total_samples)
        return 0.5 * (1 + math.cos(math.pi * seen / total_samples))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
# --8<-- [end:position]


# --8<-- [start:position_demo]
from torch.utils.data import DataLoader, TensorDataset

dataset = TensorDataset(torch.arange(len(X)))  # the indices, to see which samples come
seed, epoch = 0, 0

# Before the stop: batches of 16, one process, 5 steps.
loader = DataLoader(dataset, batch_size=16, sampler=EpochSampler(len(X), seed, epoch))
seen_before = torch.cat([b for (b,), _ in zip(loader, range(5))])
samples_done = 5 * 16  # saved in the checkpoint, in samples

# After the resume: twice the batch size, on two processes of 16 each.
seen_after = []
for rank in range(2):
    sampler = EpochSampler(len(X), seed, epoch, start=samples_done, rank=rank, num_replicas=2)
    seen_after += [b for (b,) in DataLoader(dataset, batch_size=16, sampler=sampler)]
seen = torch.cat([seen_before, *seen_after])
print(f"samples seen in the epoch: {len(seen)}, each once: {len(set(seen.tolist())) == len(X)}")
print("steps left in the epoch:", steps_left_in_epoch(len(X), samples_done, 2 * 16))

# The position kept in batches (5) and read at the new batch size skips samples.
wrong = EpochSampler(len(X), seed, epoch, start=5 * 32)
missed = len(X) - len(seen_before) - len(wrong)
print(f"position read as 5 batches of 32: {missed} samples of the epoch never seen")
# --8<-- [end:position_demo]


# --8<-- [start:schedule_demo]
total_samples = 4 * len(X)  # 4 epochs
model = build_model()
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
old = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=total_samples // 16)
for _ in range(20):  # 20 steps of 16 samples, then the stop
    adam.step()
    old.step()
saved = {"optimizer": adam.state_dict(), "scheduler": old.state_dict(), "samples_done": 20 * 16}

# Resume with batches of 32: the loaded scheduler counts steps of 16 samples.
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
loaded = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=total_samples // 32)
adam.load_state_dict(saved["optimizer"])
loaded.load_state_dict(saved["scheduler"])
print("T_max after loading:", loaded.T_max, "(the file's, not the constructor's)")
for _ in range((total_samples - saved["samples_done"]) // 32):
    adam.step()
    loaded.step()
print(f"loaded scheduler, lr at the end / base lr: {adam.param_groups[0]['lr'] / 1e-2:.2f}")

# Rebuilt in samples instead:
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
adam.load_state_dict(saved["optimizer"])
rebuilt = cosine_in_samples(adam, 1e-2, saved["samples_done"], total_samples, 32)
for _ in range((total_samples - saved["samples_done"]) // 32):
    adam.step()
    rebuilt.step()
print(f"rebuilt in samples, lr at the end / base lr: {adam.param_groups[0]['lr'] / 1e-2:.2f}")
# --8<-- [end:schedule_demo]


# --8<-- [start:no_counter]
def position_from_step(step, steps_per_epoch, samples_per_step):
    """For a checkpoint that saved its step count but no sample counter: the epoch it
    stopped in and the samples done in that epoch, from the OLD run's configuration.

    step: optimizer steps done (the checkpoint's own step counter, or the scheduler's
        `last_epoch` when it was stepped once per optimizer step; not Adam's `step` when a
        GradScaler skipped steps, which it does not count).
    steps_per_epoch: the old run's optimizer steps per epoch, e.g.
        math.ceil(len(old_loader) / old_accumulation): the last batch of an epoch can be short.
    samples_per_step: the old global batch: batch per process x accumulation x processes.
    """
    epoch, steps_into_epoch = divmod(step, steps_per_epoch)
    return epoch, steps_into_epoch * samples_per_step
# --8<-- [end:no_counter]


# --8<-- [start:no_counter_demo]
# The old run: batches of 24 on one process, no accumulation; an epoch is 11 steps, the
# last of 16 samples. Its checkpoint holds the step count, 30, and no sample counter.
old_loader = DataLoader(dataset, batch_size=24, sampler=EpochSampler(len(X), seed, 0))
steps_per_epoch = len(old_loader)
old_order = {e: list(EpochSampler(len(X), seed, e)) for e in range(3)}  # the old run's orders

epoch, done_in_epoch = position_from_step(30, steps_per_epoch, samples_per_step=24)
print(f"steps per epoch {steps_per_epoch}: epoch {epoch}, {done_in_epoch} samples into it")
print(f"step x old batch = {30 * 24} samples: {30 * 24 - epoch * len(X)} into epoch 2 "
      f"(off by {30 * 24 - epoch * len(X) - done_in_epoch})")

# The resume with batches of 64: the rest of epoch 2, in the old run's order.
rest = EpochSampler(len(X), seed, epoch, start=done_in_epoch)
seen = old_order[2][:done_in_epoch] + [int(i) for (b,) in DataLoader(
    dataset, batch_size=64, sampler=rest) for i in b]
print(f"epoch 2 after the resume: {len(seen)} samples, each once: {sorted(seen) == list(range(len(X)))}")
# --8<-- [end:no_counter_demo]


# --8<-- [start:resume_warmup]
def resume_warmup(optimizer, new_lrs, steps):
    """After loading: take each group from its loaded learning rate to its new one
    (`new_lrs`, one per group) linearly over `steps` optimizer steps, then keep it there.
    Returns the LambdaLR that does it: step it once per optimizer step, and save its state."""
    old = [group["lr"] for group in optimizer.param_groups]
    if len(new_lrs) != len(old):
        raise ValueError(f"resume_warmup: {len(new_lrs)} learning rates for {len(old)} "
                         "parameter groups; give one per group")
    for group, new in zip(optimizer.param_groups, new_lrs):
        group["lr"] = group["initial_lr"] = new

    def ramp(start):  # start: the loaded learning rate as a fraction of the new one
        return lambda step: start + (1 - start) * min(1.0, step / steps)

    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, [ramp(lr / new) for lr, new in zip(old, new_lrs)])
# --8<-- [end:resume_warmup]


# --8<-- [start:warmup_demo]
def build_wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                         nn.Linear(64, 1))


def sampled_steps(model, optimizer, batch, steps, generator, scheduler=None):
    """Steps on random batches; returns the loss on all samples after each."""
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(X), (batch,), generator=generator)
        optimizer.zero_grad()
        F.mse_loss(model(X[index]), y[index]).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            losses.append(F.mse_loss(model(X), y).item())
    return losses


# The checkpoint: 300 steps of batches of 16 at lr 1e-2.
model, generator = build_wide(), torch.Generator().manual_seed(0)
adam = torch.optim.Adam(model.parameters(), lr=1e-2)
at_checkpoint = sampled_steps(model, adam, 16, 300, generator)[-1]
torch.save({"model": model.state_dict(), "optimizer": adam.state_dict(),
            "generator": generator.get_state()}, "wide.pt")

# The resume: batches of 128 (8x), lr 8e-2 by the linear rule; at once, or warmed up.
for warmup in (0, 20):
    checkpoint = torch.load("wide.pt", weights_only=True)
    model = build_wide()
    model.load_state_dict(checkpoint["model"])
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    adam.load_state_dict(checkpoint["optimizer"])
    generator = torch.Generator()
    generator.set_state(checkpoint["generator"])
    if warmup:
        scheduler = resume_warmup(adam, [8e-2], steps=warmup)
    else:
        scheduler = None
        adam.param_groups[0]["lr"] = 8e-2
    highest = max(sampled_steps(model, adam, 128, 20, generator, scheduler))
    print(f"warm-up of {warmup:2} steps: in the 20 steps after the resume, the loss rises "
          f"above the checkpoint's: {highest > at_checkpoint}, to twice it or more: "
          f"{highest >= 2 * at_checkpoint}")
# --8<-- [end:warmup_demo]

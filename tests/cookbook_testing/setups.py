"""Readers' setups for the checkpoint library's name, group and hyperparameter functions
(snippets/lib/checkpoint_files.py): a small model under stacked wrappers, parameter
groups laid out as training scripts lay them out, the optimizers torch ships, and a run
that is saved, resumed through the library and compared with the run that did not stop.
Used by tests/lib/test_setups.py (a fixed matrix) and tests/lib/test_properties.py
(generated cases)."""

from __future__ import annotations

import contextlib
import copy
import io

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import lr_scheduler as sched

import checkpoint_files as lib


class Tiny(nn.Module):
    """Embedding layer, a norm, two blocks, a head: weights, biases and norm parameters,
    as the decay / no-decay split sees them."""

    def __init__(self, blocks=2, width=8):
        super().__init__()
        self.embed = nn.Linear(6, width)
        self.norm = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*(nn.Linear(width, width) for _ in range(blocks)))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        h = self.norm(F.relu(self.embed(x)))
        for block in self.blocks:
            h = F.relu(block(h))
        return self.head(h)


@contextlib.contextmanager
def process_group():
    """A one-process gloo group, for DistributedDataParallel and FSDP2 in this process."""
    import torch.distributed as dist
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _mesh():
    from torch.distributed.device_mesh import init_device_mesh
    return init_device_mesh("cpu", (1,))


# Each wrapper, applied to what the inner ones made. "ckpt" wraps the blocks inside the model
# (apply_activation_checkpointing), "ckpt_outer" the whole model (checkpoint_wrapper);
# "fsdp2" shards the blocks and the model with fully_shard (innermost only).
def _ckpt(model):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing, checkpoint_wrapper)
    def square(m):
        return isinstance(m, nn.Linear) and m.out_features == m.in_features  # the blocks

    apply_activation_checkpointing(model, checkpoint_wrapper_fn=checkpoint_wrapper,
                                   check_fn=square)
    return model


def _ckpt_outer(model):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
    return checkpoint_wrapper(model)


def _fsdp2(model):
    from torch.distributed.fsdp import fully_shard
    mesh = _mesh()
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


WRAPPERS = {
    "DP": nn.DataParallel,
    "DDP": lambda m: nn.parallel.DistributedDataParallel(m),
    "compile": torch.compile,
    "ckpt": _ckpt,
    "ckpt_outer": _ckpt_outer,
    "fsdp2": _fsdp2,
}


def wrap(model, stack):
    """stack: outermost first, "DDP>compile>ckpt" is DDP(torch.compile(ckpt(model)))."""
    for name in reversed([s for s in stack.split(">") if s]):
        model = WRAPPERS[name](model)
    return model


def plain(model):
    """The model under the wrappers, whose parameters the wrappers share."""
    while True:
        for attr in ("module", "_orig_mod", "_checkpoint_wrapped_module"):
            if isinstance(getattr(model, attr, None), nn.Module):
                model = getattr(model, attr)
                break
        else:
            return model


# Parameter groups, from (name, parameter) pairs under the wrappers' names; each layout is a
# list of groups: (which plain names, hyperparameters).
def _is_decayed(name):
    return name.endswith("weight") and ".norm." not in f".{name}"


LAYOUTS = {
    "one": lambda n: [(lambda x: True, {})],
    "decay": lambda n: [(_is_decayed, {"weight_decay": 0.1, "lr": 1e-3}),
                        (lambda x: not _is_decayed(x), {"weight_decay": 0.0, "lr": 1e-4})],
    "three": lambda n: [(lambda x: x.startswith("embed."), {"lr": 1e-4, "weight_decay": 0.05}),
                        (lambda x: x.startswith("blocks."), {"lr": 5e-4, "weight_decay": 0.1}),
                        (lambda x: x.startswith(("head.", "norm.")),
                         {"lr": 1e-3, "weight_decay": 0.0})],
}


def groups_of(model, layout, order=None, only=None):
    """The optimizer groups of `layout` over `model`'s named parameters, in `order` (indices
    of the layout's groups), keeping the groups in `only` if given."""
    named = list(model.named_parameters())
    spec = LAYOUTS[layout](named)
    order = list(range(len(spec))) if order is None else order
    groups = []
    for i in order:
        if only is not None and i not in only:
            continue
        keep, hyper = spec[i]
        groups.append({"params": [(n, p) for n, p in named if keep(lib.plain_name(n))], **hyper})
    return groups


OPTIMIZERS = {
    "Adam": lambda g: torch.optim.Adam(g, lr=1e-3),
    "Adam-foreach": lambda g: torch.optim.Adam(g, lr=1e-3, foreach=True),
    "Adam-fused": lambda g: torch.optim.Adam(g, lr=1e-3, fused=True),
    "Adam-amsgrad": lambda g: torch.optim.Adam(g, lr=1e-3, amsgrad=True),
    "AdamW": lambda g: torch.optim.AdamW(g, lr=1e-3),
    "AdamW-foreach": lambda g: torch.optim.AdamW(g, lr=1e-3, foreach=True),
    "AdamW-fused": lambda g: torch.optim.AdamW(g, lr=1e-3, fused=True),
    "Adafactor": lambda g: torch.optim.Adafactor(g, lr=1e-2),
    "Adafactor-foreach": lambda g: torch.optim.Adafactor(g, lr=1e-2, foreach=True),
    "SGD-momentum": lambda g: torch.optim.SGD(g, lr=1e-2, momentum=0.9),
    "SGD-momentum-foreach": lambda g: torch.optim.SGD(g, lr=1e-2, momentum=0.9, foreach=True),
    "SGD-momentum-fused": lambda g: torch.optim.SGD(g, lr=1e-2, momentum=0.9, fused=True),
    "RMSprop": lambda g: torch.optim.RMSprop(g, lr=1e-3, momentum=0.5, centered=True),
    "RMSprop-foreach": lambda g: torch.optim.RMSprop(g, lr=1e-3, momentum=0.5, foreach=True),
    "NAdam": lambda g: torch.optim.NAdam(g, lr=1e-3),
    "NAdam-foreach": lambda g: torch.optim.NAdam(g, lr=1e-3, foreach=True),
    "RAdam": lambda g: torch.optim.RAdam(g, lr=1e-3),
    "RAdam-foreach": lambda g: torch.optim.RAdam(g, lr=1e-3, foreach=True),
    "Adagrad": lambda g: torch.optim.Adagrad(g, lr=1e-2),
    "Adagrad-foreach": lambda g: torch.optim.Adagrad(g, lr=1e-2, foreach=True),
    "Adagrad-fused": lambda g: torch.optim.Adagrad(g, lr=1e-2, fused=True),
}

SCHEDULERS = {
    "none": None,
    "LambdaLR": lambda o: sched.LambdaLR(o, lambda s: min(1.0, (s + 1) / 4)),  # warm-up
    "MultiplicativeLR": lambda o: sched.MultiplicativeLR(o, lambda s: 0.95),
    "StepLR": lambda o: sched.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: sched.MultiStepLR(o, [2, 5], gamma=0.3),
    "ConstantLR": lambda o: sched.ConstantLR(o, factor=0.25, total_iters=4),
    "LinearLR": lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=6),
    "ExponentialLR": lambda o: sched.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda o: sched.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingLR": lambda o: sched.CosineAnnealingLR(o, T_max=9, eta_min=1e-6),
    "CosineAnnealingWarmRestarts": lambda o: sched.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=1e-6),
    "OneCycleLR": lambda o: sched.OneCycleLR(o, max_lr=[g["lr"] for g in o.param_groups],
                                             total_steps=40),
    "ReduceLROnPlateau": lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=0),
    "SequentialLR": lambda o: sched.SequentialLR(o, [
        sched.LinearLR(o, start_factor=0.1, total_iters=3),
        sched.ExponentialLR(o, gamma=0.9)], milestones=[3]),
    "ChainedScheduler": lambda o: sched.ChainedScheduler([
        sched.ConstantLR(o, factor=0.5, total_iters=3), sched.ExponentialLR(o, gamma=0.9)]),
}

_g = torch.Generator().manual_seed(0)
INPUTS, TARGETS = torch.randn(12, 6, generator=_g), torch.randint(0, 3, (12,), generator=_g)


class Run:
    """A model under `stack`, its optimizer over `layout`'s groups and a scheduler."""

    def __init__(self, stack="", layout="one", optimizer="AdamW", scheduler="LambdaLR",
                 order=None, only=None, frozen=(), seed=0):
        torch.manual_seed(seed)
        self.base = Tiny()
        for name, p in self.base.named_parameters():
            if name.startswith(tuple(frozen)):
                p.requires_grad_(False)
        self.model = wrap(self.base, stack)
        self.base = plain(self.model)
        self.layout, self.kind = layout, scheduler
        self.optimizer = OPTIMIZERS[optimizer](groups_of(self.model, layout, order, only))
        make = SCHEDULERS[scheduler]
        self.scheduler = make(self.optimizer) if make else None

    def step(self, n=1):
        for _ in range(n):
            self.model.zero_grad()  # parameters not (yet) in the optimizer too
            with torch.compiler.set_stance("force_eager"):  # compile's names, eager speed
                F.cross_entropy(self.model(INPUTS), TARGETS).backward()
            self.optimizer.step()
            if isinstance(self.scheduler, sched.ReduceLROnPlateau):
                self.scheduler.step(1.0)
            elif self.scheduler is not None:
                self.scheduler.step()

    def add_group(self, layout_index, hyper=None):
        """add_param_group of one more of the layout's groups (a stage unfrozen later)."""
        group = groups_of(self.model, self.layout, only={layout_index})[0]
        self.optimizer.add_param_group({**group, **(hyper or {})})
        if self.scheduler is not None:  # torch's schedulers refuse a group added after them
            self.scheduler = SCHEDULERS[self.kind](self.optimizer)

    def state(self, file=False):
        """Model, optimizer and scheduler state: a deep copy or, with `file`, through
        torch.save and a weights_only load (what a resume reads; 0.1 s a case here)."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler else None}
        if not file:
            return copy.deepcopy(state)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=True)

    def resume_by_name(self, saved):
        lib.load_weights(self.model, saved["model"])
        return lib.load_by_name(self.optimizer, saved["optimizer"], scheduler=self.scheduler,
                                saved_scheduler=saved["scheduler"])

    def resume_checked(self, saved):
        lib.load_weights(self.model, saved["model"])
        lib.check_same_parameters(self.optimizer, saved["optimizer"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])

    def parameters(self):
        """Plain name: full tensor (FSDP2's DTensors gathered)."""
        return {lib.plain_name(n): getattr(p, "full_tensor", lambda: p)().detach()
                for n, p in self.model.named_parameters()}

    def hyperparameters(self):
        """Per plain parameter name: lr and weight decay of its group."""
        return {lib.plain_name(n): (g["lr"], g.get("weight_decay"))
                for g in self.optimizer.param_groups for n in g["param_names"]}

    def bump_steps(self, by=10**8):
        """Step counters past 10^8: the optimizer's and the scheduler's."""
        for state in self.optimizer.state.values():
            if "step" in state:
                state["step"] = state["step"] + by
        if self.scheduler is not None and hasattr(self.scheduler, "last_epoch"):
            self.scheduler.last_epoch += by


def same_run(a, b):
    """Bitwise the same parameters, and each parameter under the same lr and weight decay."""
    pa, pb = a.parameters(), b.parameters()
    assert pa.keys() == pb.keys()
    differ = [n for n in pa if not torch.equal(pa[n], pb[n])]
    assert not differ, f"parameters differ after the resume: {differ}"
    assert a.hyperparameters() == b.hyperparameters()

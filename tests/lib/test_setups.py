"""The checkpoint library's name, group and hyperparameter functions (plain_name,
check_group_count, load_by_name, check_same_parameters, load_weights, set_hyperparameters,
set_composite_lr; snippets/lib/checkpoint_files.py) on readers' setups: the lists
"Tested on" of docs/changes/model.md, docs/changes/schedulers.md,
docs/recipes/safe-checkpoints.md and docs/troubleshooting/errors.md.

Each case trains a run, saves it through torch.save and a weights_only load, resumes it in
new objects through the library, and compares the parameters (bitwise) and each parameter's
lr and weight decay with the run that did not stop; a setup the library cannot resume right
must raise a clear error instead."""

from __future__ import annotations

import copy

import pytest
import torch

import checkpoint_files as lib
from cookbook_testing.pages import DOCS
from cookbook_testing.setups import (OPTIMIZERS, SCHEDULERS, Run, process_group, same_run)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

# Wrappers, outermost first: every order of DDP (or DataParallel), torch.compile and
# activation checkpointing, of the blocks ("ckpt") or of the whole model ("ckpt_outer");
# FSDP2's fully_shard, alone and under the others it combines with.
STACKS = ["", "DP", "DDP", "compile", "ckpt", "ckpt_outer",
          "DDP>compile", "compile>DDP", "DP>compile", "compile>DP", "DDP>ckpt", "compile>ckpt",
          "DDP>ckpt_outer", "ckpt_outer>DDP", "compile>ckpt_outer", "ckpt_outer>compile",
          "DDP>compile>ckpt", "compile>DDP>ckpt", "DP>compile>ckpt",
          "DDP>compile>ckpt_outer", "DDP>ckpt_outer>compile", "compile>DDP>ckpt_outer",
          "compile>ckpt_outer>DDP", "ckpt_outer>DDP>compile", "ckpt_outer>compile>DDP",
          "fsdp2", "compile>fsdp2", "fsdp2>ckpt", "compile>fsdp2>ckpt"]

# Group layouts: (layout, the groups at the save in their order, the groups of the resumed
# optimizer in their order, parameters frozen, a group added with add_param_group after
# step 2 of the first run). Layout groups: "decay" = weights, no-decay; "three" = embed,
# blocks, head and norm, each with its own lr and weight decay.
LAYOUTS = {
    "one group": ("one", None, None, (), None),
    "decay, no-decay": ("decay", None, None, (), None),
    "decay, no-decay, resumed in the other order": ("decay", None, [1, 0], (), None),
    "three with their own lr and wd": ("three", None, None, (), None),
    "three, resumed in another order": ("three", None, [2, 0, 1], (), None),
    "embed frozen": ("one", None, None, ("embed.",), None),
    "add_param_group later": ("three", [2], [2, 1], (), 1),
}

COUNT: dict = {}  # setups x functions, for the report at the end of the module


def _first_run(stack, layout, optimizer="AdamW", scheduler="LambdaLR", bump=False):
    name, order, _, frozen, added = LAYOUTS[layout]
    only = set(order) if order is not None else None
    run = Run(stack, name, optimizer, scheduler, order=order, only=only, frozen=frozen)
    run.step(1)
    if added is not None:
        run.add_group(added)
    if bump:
        run.bump_steps()
    run.step(1)
    return run


def _resumed(stack, layout, optimizer="AdamW", scheduler="LambdaLR"):
    name, order, resume_order, frozen, added = LAYOUTS[layout]
    order = resume_order or order
    only = set(order) if order is not None else None
    return Run(stack, name, optimizer, scheduler, order=order, only=only, frozen=frozen,
               seed=1)  # other initial weights: the load must replace them all


def _check(stack, layout, targets, optimizer="AdamW", scheduler="LambdaLR", bump=False,
           paths=("by name", "checked"), file=False):
    """Save a run under `stack`, resume it under each target stack along each path, and
    compare with the run that did not stop. The checked path (check_same_parameters, then
    torch's load_state_dict by position) must refuse groups in another order."""
    first = _first_run(stack, layout, optimizer, scheduler, bump)
    file_state = first.state(file=file)
    first.step(2)
    _, order, resume_order, frozen, added = LAYOUTS[layout]
    saved_order = (order or []) + ([added] if added is not None else [])
    reordered = resume_order is not None and resume_order != saved_order
    opt = file_state["optimizer"]  # frozen: no state, unless the optimizer makes it upfront
    no_state = [lib.plain_name(n) for g in opt["param_groups"]
                for i, n in zip(g["params"], g["param_names"]) if i not in opt["state"]]
    for target in targets:
        for path in paths:
            run = _resumed(target, layout, optimizer, scheduler)
            saved = copy.deepcopy(file_state)  # the optimizer keeps (and steps) what it loads
            if path == "checked" and reordered:
                with pytest.raises(ValueError, match="in the checkpoint"):
                    run.resume_checked(saved)
                COUNT["refused"] = COUNT.get("refused", 0) + 1
                continue
            if path == "by name":
                assert run.resume_by_name(saved) == (no_state, [])  # frozen: no state
            else:
                run.resume_checked(saved)
            run.step(2)
            same_run(first, run)
            if bump:
                steps = [int(s["step"]) for s in run.optimizer.state.values() if "step" in s]
                assert not steps or max(steps) >= 10**8  # float32: 10^8 + 3 is 10^8
                if run.scheduler is not None and hasattr(run.scheduler, "last_epoch"):
                    assert run.scheduler.last_epoch > 10**8
            COUNT[path] = COUNT.get(path, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _group():
    import time
    start = time.process_time()
    with process_group():
        yield
    print(f"\nlibrary setups resumed: {COUNT}, {time.process_time() - start:.1f} s of CPU")


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s or "plain")
def test_every_wrapper_stack(stack):
    """Saved under `stack`, resumed under the same stack and in the plain model, with the
    decay and no-decay groups built in the other order: load_weights, load_by_name (and the
    scheduler through it); check_same_parameters refuses the position-wise load."""
    targets = [stack] if "fsdp2" in stack else sorted({stack, ""})
    _check(stack, "decay, no-decay, resumed in the other order", targets,
           file="fsdp2" in stack)  # FSDP2's DTensors through a real file


def test_wrapper_levels_in_names():
    """The levels each wrapper adds to the names, as the page lists them: FSDP2 none."""
    from cookbook_testing.setups import Tiny, wrap
    plain = [n for n, _ in Tiny().named_parameters()]
    for stack, level in (("fsdp2", None), ("DDP", "module."), ("compile", "_orig_mod."),
                         ("ckpt_outer", None), ("DDP>compile", "module._orig_mod.")):
        names = [n for n, _ in wrap(Tiny(), stack).named_parameters()]
        assert names == [(level or "") + n for n in plain], stack
    names = [n for n, _ in wrap(Tiny(), "ckpt").named_parameters()]
    assert "blocks.0._checkpoint_wrapped_module.weight" in names
    assert [lib.plain_name(n) for n in names] == plain


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_group_layout(layout):
    """Each group layout, by name and checked, under three stacks and across them."""
    for stack, target in (("", ""), ("DDP>compile>ckpt", ""), ("compile>DP", "ckpt_outer>DDP")):
        _check(stack, layout, [target])


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer(optimizer):
    """The optimizers torch ships, with their foreach and fused implementations: saved under
    DDP(torch.compile(model)) into a file, resumed in the plain model, with the groups in
    another order, with frozen parameters, and with a group added later."""
    for layout in ("three, resumed in another order", "embed frozen", "add_param_group later"):
        _check("DDP>compile", layout, [""], optimizer=optimizer, paths=("by name",),
               file=layout == "embed frozen")


@pytest.mark.parametrize("scheduler", ["LambdaLR", "StepLR", "CosineAnnealingLR",
                                       "ReduceLROnPlateau", "SequentialLR", "none"])
def test_step_counters_past_10_to_the_8(scheduler):
    """Optimizer steps and scheduler epochs past 10^8 survive the library's load."""
    for layout in ("decay, no-decay, resumed in the other order", "add_param_group later"):
        _check("DDP>compile>ckpt", layout, [""], optimizer="Adam-fused", scheduler=scheduler,
               bump=True, paths=("by name",))


# --- set_hyperparameters and set_composite_lr after a resume by name ---------------------

NEW = {"one": ([2e-4], [0.02]), "decay": ([3e-4, 3e-5], [0.05, 0.0]),
       "three": ([2e-5, 1e-4, 2e-4], [0.01, 0.2, 0.0])}


@pytest.mark.parametrize("scheduler", [s for s in SCHEDULERS if s not in ("CyclicLR",)])
def test_new_hyperparameters_per_group_after_a_resume(scheduler):
    """Resumed by name (groups in another order for "decay" and "three"), then new lr and
    weight decay per group: equal to a run that used them from the start. One value for
    groups that differ is refused, and changes nothing."""
    for layout, resume_order in (("one", None), ("decay", [1, 0]), ("three", [2, 0, 1])):
        lrs, decays = NEW[layout]
        reference = _reference(layout, scheduler, lrs, decays)
        first = Run("DDP>compile", layout, "AdamW", scheduler)
        first.step(2)
        saved = first.state()
        reference.step(2)
        run = Run("", layout, "AdamW", scheduler, order=resume_order, seed=1)
        run.resume_by_name(saved)
        order = resume_order or list(range(len(lrs)))
        mine = ([lrs[i] for i in order], [decays[i] for i in order])
        if len(lrs) > 1:  # the groups have different values
            with pytest.raises(ValueError, match="give a list with one value per group"):
                _set(run, scheduler, lrs[0], decays[0])
        if scheduler in ("none", "ReduceLROnPlateau"):  # the learning rate from now on
            now = {n: lr for n, (lr, _) in reference.hyperparameters().items()}
            names = [g["param_names"][0] for g in run.optimizer.param_groups]
            mine = ([now[lib.plain_name(n)] for n in names], mine[1])
        _set(run, scheduler, *mine)
        reference.step(2)
        run.step(2)
        got, expected = run.hyperparameters(), reference.hyperparameters()
        assert got.keys() == expected.keys()
        for name in got:
            assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name
        COUNT["hyperparameters"] = COUNT.get("hyperparameters", 0) + 1


def _reference(layout, scheduler, lrs, decays):
    """A run built with the new values from the start."""
    from cookbook_testing import setups
    original = setups.LAYOUTS[layout]
    spec = original(None)
    setups.LAYOUTS["_new"] = lambda n: [(keep, {**hyper, "lr": lr, "weight_decay": decay})
                                        for (keep, hyper), lr, decay in zip(spec, lrs, decays)]
    try:
        return Run("", "_new", "AdamW", scheduler)
    finally:
        del setups.LAYOUTS["_new"]


def _set(run, scheduler, lr, weight_decay):
    if scheduler in ("SequentialLR", "ChainedScheduler"):
        lib.set_composite_lr(run.optimizer, run.scheduler, lr)
        lib.set_hyperparameters(run.optimizer, run.scheduler, weight_decay=weight_decay)
    else:
        lib.set_hyperparameters(run.optimizer, run.scheduler, lr=lr, weight_decay=weight_decay)


def test_the_pages_list_the_setups_they_were_tested_on():
    for page in ("changes/model", "changes/schedulers", "recipes/safe-checkpoints",
                 "troubleshooting/errors"):
        for suffix in (".md", ".ja.md"):
            text = (DOCS / f"{page}{suffix}").read_text(encoding="utf-8")
            assert "tests/lib/test_setups.py" in text, f"{page}{suffix}"

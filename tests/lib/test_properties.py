"""Generated cases for the checkpoint library's name, group and hyperparameter functions
(snippets/lib/checkpoint_files.py): models with generated module names (a module may
itself be called "module" or "_orig_mod"), wrapper stacks on the saving and the resuming
side, parameter groups of generated membership, order and hyperparameters, scheduler
families. A save and a resume through the library equal the run that did not stop, or
raise a ValueError or TypeError that says what to do; never a silent difference.

`make test` runs a fixed, reproducible set of examples (profile "default"); a scheduled
job runs more with HYPOTHESIS_PROFILE=long."""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import checkpoint_files as lib
from cookbook_testing.pages import ROOT
from cookbook_testing.setups import SCHEDULERS, process_group

# Hypothesis keeps caches in ./.hypothesis; here under .cache/, which .gitignore names.
set_hypothesis_home_dir(ROOT / ".cache" / "hypothesis")
settings.register_profile("default", max_examples=15, deadline=None, derandomize=True,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=500, deadline=None, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

CONTAINERS = ["enc", "dec", "module", "layers"]
LEAVES = ["fc", "proj", "module", "_orig_mod", "out", "a"]
WRAPPERS = ["DP", "DDP", "compile", "ckpt_outer", "ckpt"]
SCALED = ["none", "LambdaLR", "StepLR", "CosineAnnealingLR", "OneCycleLR", "ExponentialLR",
          "ReduceLROnPlateau", "LinearLR"]
FAMILIES = SCALED + ["SequentialLR", "ChainedScheduler", "MultiStepLR"]
WIDTH = 3
_g = torch.Generator().manual_seed(0)
INPUTS = torch.randn(5, WIDTH, generator=_g)


class Generated(nn.Module):
    """Linear layers at the generated paths (("enc", "fc"), ("out",), ...), applied in order."""

    def __init__(self, paths):
        super().__init__()
        self.paths = paths
        for path in paths:
            parent = self
            for part in path[:-1]:
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Module())
                parent = getattr(parent, part)
            parent.add_module(path[-1], nn.Linear(WIDTH, WIDTH))

    def forward(self, x):
        for path in self.paths:
            layer = self
            for part in path:
                layer = getattr(layer, part)
            x = torch.tanh(layer(x))
        return x


def _wrap(model, stack):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing, checkpoint_wrapper)
    for name in reversed(stack):
        if name == "ckpt":  # blocks inside the model
            apply_activation_checkpointing(model, checkpoint_wrapper_fn=checkpoint_wrapper,
                                           check_fn=lambda m: isinstance(m, nn.Linear))
        else:
            model = {"DP": nn.DataParallel, "DDP": nn.parallel.DistributedDataParallel,
                     "compile": torch.compile, "ckpt_outer": checkpoint_wrapper}[name](model)
    return model


@st.composite
def paths(draw):
    """Unique layer paths; a container name never also names a layer."""
    n = draw(st.integers(2, 5))
    out = []
    for _ in range(n):
        depth = draw(st.integers(1, 2))
        path = tuple(draw(st.sampled_from(CONTAINERS)) for _ in range(depth - 1))
        out.append(path + (draw(st.sampled_from(LEAVES)),))
    out = list(dict.fromkeys(out))
    containers = {p[0] for p in out if len(p) > 1}
    out = [p for p in out if not (len(p) == 1 and p[0] in containers)] or [("fc",)]
    if draw(st.booleans()):  # keep names that become one without wrapper levels (refused)
        return out
    plain = {lib.plain_name(".".join(p + ("weight",))): p for p in reversed(out)}
    return [p for p in out if p in plain.values()]


@st.composite
def cases(draw, families=FAMILIES):
    layer_paths = draw(paths())
    n_params = 2 * len(layer_paths)
    n_groups = draw(st.integers(1, min(3, n_params)))
    membership = draw(st.lists(st.integers(0, n_groups - 1), min_size=n_params,
                               max_size=n_params))
    membership[:n_groups] = range(n_groups)  # no empty group
    values = st.sampled_from([1e-3, 3e-4, 1e-4])
    hyper = [{"lr": draw(values), "weight_decay": draw(st.sampled_from([0.0, 0.01, 0.1]))}
             for _ in range(n_groups)]
    order = draw(st.permutations(range(n_groups)))
    moved = draw(st.booleans()) and n_groups > 1 and draw(st.booleans())
    return {
        "paths": layer_paths, "membership": membership, "hyper": hyper,
        "save_stack": draw(st.lists(st.sampled_from(WRAPPERS), max_size=3, unique=True)),
        "resume_stack": draw(st.lists(st.sampled_from(WRAPPERS), max_size=3, unique=True)),
        "order": list(order), "moved": moved, "scheduler": draw(st.sampled_from(families)),
        "steps": draw(st.integers(1, 3)),
    }


def _build(case, stack, order=None, membership=None, seed=0):
    torch.manual_seed(seed)
    base = Generated(case["paths"])
    model = _wrap(base, stack)
    named = list(model.named_parameters())
    membership = membership or case["membership"]
    groups = [{"params": [pair for pair, m in zip(named, membership) if m == g],
               **case["hyper"][g]} for g in (order or range(len(case["hyper"])))]
    optimizer = torch.optim.AdamW(groups)
    make = SCHEDULERS[case["scheduler"]]
    return model, optimizer, make(optimizer) if make else None


def _step(model, optimizer, scheduler, n):
    for _ in range(n):
        model.zero_grad()
        with torch.compiler.set_stance("force_eager"):
            model(INPUTS).square().mean().backward()
        optimizer.step()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(1.0)
        elif scheduler is not None:
            scheduler.step()


def _view(model, optimizer):
    params = {lib.plain_name(n): p.detach().clone() for n, p in model.named_parameters()}
    hyper = {lib.plain_name(n): (g["lr"], g["weight_decay"])
             for g in optimizer.param_groups for n in g["param_names"]}
    return params, hyper


CLEAR = ("checkpoint", "group", "here", "build", "rename", "scheduler")


@pytest.fixture(scope="module", autouse=True)
def _group():
    with process_group():
        yield


@given(case=cases())
def test_resume_by_name_equals_the_run_that_did_not_stop_or_refuses(case):
    model, optimizer, scheduler = _build(case, case["save_stack"])
    _step(model, optimizer, scheduler, case["steps"])
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler and scheduler.state_dict()})
    _step(model, optimizer, scheduler, 2)
    expected = _view(model, optimizer)

    membership = list(case["membership"])
    if case["moved"]:  # a parameter in another group than when saved
        membership[-1] = (membership[-1] + 1) % len(case["hyper"])
    resumed, resumed_optimizer, resumed_scheduler = _build(
        case, case["resume_stack"], case["order"], membership, seed=1)
    try:
        lib.load_weights(resumed, saved["model"])
        new, dropped = lib.load_by_name(resumed_optimizer, saved["optimizer"],
                                        scheduler=resumed_scheduler,
                                        saved_scheduler=saved["scheduler"])
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(word in message for word in CLEAR), message
        assert case["moved"] or "without wrapper prefixes" in message, \
            f"refused a case that resumes: {message}"
        return
    assert not case["moved"], "a parameter in another group than saved, and no error"
    assert dropped == []
    _step(resumed, resumed_optimizer, resumed_scheduler, 2)
    params, hyper = _view(resumed, resumed_optimizer)
    assert params.keys() == expected[0].keys()
    assert all(torch.equal(params[n], expected[0][n]) for n in params), "silent difference"
    assert hyper == expected[1], "hyperparameters moved to another group"


@given(case=cases(families=SCALED), data=st.data())
def test_new_hyperparameters_per_group_equal_a_run_that_had_them(case, data):
    """After a resume by name, set_hyperparameters with one value per group equals a run
    built with those values; one value for groups that differ is refused."""
    names = [lib.plain_name(".".join(p + ("weight",))) for p in case["paths"]]
    assume(len(set(names)) == len(names))
    model, optimizer, scheduler = _build(case, case["save_stack"])
    _step(model, optimizer, scheduler, case["steps"])
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler and scheduler.state_dict()})
    n = len(case["hyper"])
    new = [{"lr": data.draw(st.sampled_from([5e-4, 2e-4, 5e-5])),
            "weight_decay": data.draw(st.sampled_from([0.0, 0.05]))} for _ in range(n)]
    reference = _build({**case, "hyper": new}, [])
    _step(*reference, case["steps"])

    resumed = _build(case, case["resume_stack"], case["order"], seed=1)
    lib.load_weights(resumed[0], saved["model"])
    lib.load_by_name(resumed[1], saved["optimizer"], scheduler=resumed[2],
                     saved_scheduler=saved["scheduler"])
    groups = resumed[1].param_groups
    if len({(g["lr"], g["weight_decay"]) for g in groups}) > 1:
        before = [(g["lr"], g["weight_decay"]) for g in groups]
        with pytest.raises(ValueError, match="give a list with one value per group"):
            lib.set_hyperparameters(resumed[1], resumed[2], lr=new[0]["lr"],
                                    weight_decay=new[0]["weight_decay"])
        assert [(g["lr"], g["weight_decay"]) for g in groups] == before
    now = {lib.plain_name(n): g["lr"] for g in reference[1].param_groups
           for n in g["param_names"]}
    lrs = [now[lib.plain_name(g["param_names"][0])]
           if case["scheduler"] in ("none", "ReduceLROnPlateau") else new[i]["lr"]
           for g, i in zip(groups, case["order"])]
    lib.set_hyperparameters(resumed[1], resumed[2], lr=lrs,
                            weight_decay=[new[i]["weight_decay"] for i in case["order"]])
    _step(*reference, 2)
    _step(*resumed, 2)
    got, expected = _view(*resumed[:2])[1], _view(*reference[:2])[1]
    assert got.keys() == expected.keys()
    for name in got:
        assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name


def test_the_weekly_job_runs_the_long_profile():
    import yaml
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "weekly.yml").read_text())
    steps = doc["jobs"]["generated-cases"]["steps"]
    step = next(s for s in steps if "tests/lib/test_properties.py" in s.get("run", ""))
    assert step["env"]["HYPOTHESIS_PROFILE"] == "long"
    long, default = settings.get_profile("long"), settings.get_profile("default")
    assert long.max_examples > 10 * default.max_examples

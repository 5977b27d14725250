"""Claims of docs/changes/model.md that its blocks do not assert themselves, and the library
functions it shows (load_by_name's skip, check_same_parameters, load_weights) tried beyond the
page's cases. Quoted messages are triggered here and looked up verbatim in both languages."""

from __future__ import annotations

import contextlib
import copy
import io
import os

import pytest
import torch
import torch.nn as nn

from checkpoint_files import check_same_parameters, load_by_name, load_weights
from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source

PAGE = "changes/model.md"
SNIPPET = SNIPPETS / "changes" / "model.py"


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    """The page's running example, model classes and stage functions, as the page defines them
    (in a directory of their own: the setup writes checkpoint.pt)."""
    namespace: dict = {"load_by_name": load_by_name, "check_same_parameters": check_same_parameters}
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("model"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for section in ("setup", "added", "renamed", "reordered", "by_name", "stages"):
                code = compile(section_source(SNIPPET, section), str(SNIPPET), "exec")
                with contextlib.suppress(ValueError):  # "added" raises once Deeper is defined
                    exec(code, namespace)
    finally:
        os.chdir(cwd)
    return namespace


def fresh(ns):
    """A checkpoint dict of its own (load_state_dict keeps the tensors it is given)."""
    return copy.deepcopy({"model": ns["old"].state_dict(),
                          "optimizer": ns["old_optimizer"].state_dict()})


def test_removed_layer_same_error_as_added(ns):
    model = ns["Shallow"]()
    optimizer = torch.optim.Adam(model.named_parameters())
    with pytest.raises(ValueError) as info:
        optimizer.load_state_dict(fresh(ns)["optimizer"])
    assert_quoted(PAGE, f"ValueError: {info.value}")


def test_renamed_model_and_strict_false_shape_messages(ns):
    with pytest.raises(RuntimeError) as info:
        ns["Renamed"]().load_state_dict(fresh(ns)["model"])
    assert_quoted(PAGE, f"RuntimeError: {info.value}")

    class FineTune(ns["Net"]):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 7)

    model = FineTune()
    before = model.fc1.weight.detach().clone()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(fresh(ns)["model"], strict=False)
    assert_quoted(PAGE, f"RuntimeError: {info.value}")
    # the keys that fit were copied before torch raised: the model is half loaded
    assert not torch.equal(model.fc1.weight, before)


@pytest.mark.parametrize("impl", [{"foreach": False}, {"foreach": True}, {"fused": True}])
def test_reordered_shapes_fail_at_step_in_every_implementation(ns, impl):
    model = ns["Net"]()
    params = [model.head.weight, model.head.bias, model.fc1.weight, model.fc1.bias,
              model.fc2.weight, model.fc2.bias]  # the head first, as HeadFirst creates it
    optimizer = torch.optim.Adam(params, **impl)
    optimizer.load_state_dict(fresh(ns)["optimizer"])  # the load itself compares no shapes
    assert optimizer.state[model.head.weight]["exp_avg"].shape == (8, 8)
    with pytest.raises(RuntimeError) as info:
        ns["train"](model, optimizer, steps=1)
    assert_quoted(PAGE, f"RuntimeError: {info.value}")


def test_group_count_message(ns):
    model = ns["Net"]()
    optimizer = torch.optim.Adam([{"params": model.head.parameters()},
                                  {"params": [*model.fc1.parameters(), *model.fc2.parameters()]}])
    with pytest.raises(ValueError) as info:
        optimizer.load_state_dict(fresh(ns)["optimizer"])
    assert_quoted(PAGE, f"ValueError: {info.value}")


def test_param_names_recorded_then_replaced_by_the_saved_ones(ns):
    saved = fresh(ns)["optimizer"]
    assert saved["param_groups"][0]["param_names"][0] == "fc1.weight"
    unnamed = torch.optim.Adam(ns["Net"]().parameters()).state_dict()
    assert "param_names" not in unnamed["param_groups"][0]
    model = ns["Renamed"]()
    optimizer = torch.optim.Adam(model.named_parameters())
    optimizer.load_state_dict(saved)
    assert optimizer.state_dict()["param_groups"][0]["param_names"][0] == "fc1.weight"
    # by position, and the positions did not change: each state on its own parameter
    assert optimizer.state[model.encoder.weight]["exp_avg"] is saved["state"][0]["exp_avg"]
    assert optimizer.state[model.hidden.bias]["exp_avg"] is saved["state"][3]["exp_avg"]


def test_load_state_dict_keeps_the_tensors_it_is_given(ns):
    """The note: no copy, so training after the load changes the dict; torch.load does not share."""
    saved = fresh(ns)["optimizer"]
    model = ns["Net"]()
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(saved)
    assert optimizer.state[model.fc1.weight]["exp_avg"] is saved["state"][0]["exp_avg"]
    assert optimizer.state[model.fc1.weight]["step"] is saved["state"][0]["step"]
    second = torch.optim.Adam(model.parameters())
    second.load_state_dict(saved)  # a second load of the same dict: the same tensors again
    assert second.state[model.fc1.weight]["exp_avg"] is optimizer.state[model.fc1.weight]["exp_avg"]
    before = saved["state"][0]["exp_avg"].clone()
    ns["train"](model, optimizer, steps=1)
    assert not torch.equal(saved["state"][0]["exp_avg"], before)
    assert int(saved["state"][0]["step"]) == 4


def test_load_state_dict_copies_across_dtype(ns):
    """...except when the dtype or device differs: then the state is converted, a copy."""
    saved = fresh(ns)["optimizer"]
    model = ns["Net"]().double()
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(saved)
    assert optimizer.state[model.fc1.weight]["exp_avg"] is not saved["state"][0]["exp_avg"]


def test_load_by_name_skip_with_wrappers(ns):
    old_optimizer, old = ns["old_optimizer"], ns["old"]

    class FineTune(ns["Net"]):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 7)

    model = FineTune()
    # a torch.compile-style name on this side, the plain names in the checkpoint
    optimizer = torch.optim.Adam([("_orig_mod." + n, p) for n, p in model.named_parameters()])
    new, dropped = load_by_name(optimizer, fresh(ns)["optimizer"], skip=("head.",))
    assert new == ["head.weight", "head.bias"] and dropped == ["head.bias", "head.weight"]
    assert model.head.weight not in optimizer.state
    assert torch.equal(optimizer.state[model.fc2.weight]["exp_avg"],
                       old_optimizer.state[old.fc2.weight]["exp_avg"])
    # a skip that matches nothing changes nothing
    optimizer = torch.optim.Adam(ns["Net"]().named_parameters())
    assert load_by_name(optimizer, fresh(ns)["optimizer"], skip=("nothing.",)) == ([], [])


def test_check_same_parameters(ns):
    Net, Reordered = ns["Net"], ns["Reordered"]
    saved = fresh(ns)["optimizer"]
    check_same_parameters(torch.optim.Adam(Net().named_parameters()), saved)  # passes
    # wrapper prefixes on either side do not count
    wrapped = nn.DataParallel(Net())
    check_same_parameters(torch.optim.Adam(wrapped.named_parameters()), saved)
    with pytest.raises(ValueError, match="fc2.weight here is fc1.weight in the checkpoint"):
        check_same_parameters(torch.optim.Adam(Reordered().named_parameters()), saved)

    # without param_names: a swap of different shapes is caught, one of equal shapes is not
    unnamed_saved = torch.optim.Adam(ns["old"].parameters())
    unnamed_saved.load_state_dict(fresh(ns)["optimizer"])
    plain = unnamed_saved.state_dict()
    for g in plain["param_groups"]:
        g.pop("param_names", None)
    check_same_parameters(torch.optim.Adam(Reordered().parameters()), plain)  # (8, 8) swap
    head_first = Net()
    params = [head_first.head.weight, head_first.head.bias, *head_first.fc1.parameters(),
              *head_first.fc2.parameters()]
    with pytest.raises(ValueError, match=r"group 0: parameter 0 has shape \(4, 8\), "
                                         r"its saved exp_avg \(8, 8\)"):
        check_same_parameters(torch.optim.Adam(params), plain)

    with pytest.raises(ValueError, match="2 parameter groups in the checkpoint, 1 here"):
        model = Net()
        staged = ns["build_optimizer"](model, 1).state_dict()
        check_same_parameters(ns["build_optimizer"](Net(), 0), staged)
    assert staged["param_groups"][1]["name"] == "fc2"  # the group's name is in the state dict


def test_load_weights(ns):
    Net, old = ns["Net"], ns["old"]
    # refused before anything is loaded: the model keeps its initial weights
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: v for k, v in fresh(ns)["model"].items() if not k.startswith("fc2.")}
    with pytest.raises(ValueError, match=r"2 of the model's 6 keys are not in the checkpoint "
                                         r"\['fc2.weight', 'fc2.bias'\], 0 of its keys"):
        load_weights(model, state)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # a wrapped model, a plain checkpoint; a layer removed since the save, named in skip
    target = nn.DataParallel(ns["Shallow"]())
    assert load_weights(target, fresh(ns)["model"], skip=("fc2.",)) == []
    assert torch.equal(target.module.head.weight, old.head.weight)
    # a shape that differs is still torch's error
    wide = Net()
    wide.head = nn.Linear(8, 7)
    with pytest.raises(RuntimeError, match="size mismatch for head.weight"):
        load_weights(wide, fresh(ns)["model"])


def test_frozen_parameters(ns):
    Net, train = ns["Net"], ns["train"]
    torch.manual_seed(1)
    model = Net()
    optimizer = torch.optim.AdamW(model.named_parameters(), weight_decay=0.1)
    model.fc1.requires_grad_(False)
    before = model.fc1.weight.detach().clone()
    train(model, optimizer)
    assert torch.equal(model.fc1.weight, before)  # no decay either: step() skipped it
    saved = optimizer.state_dict()
    assert sorted(saved["state"]) == [2, 3, 4, 5]

    # the frozen-stage checkpoint loads into a fresh optimizer of every parameter, and the
    # run continues after unfreezing exactly as the one that did not stop
    resumed = copy.deepcopy(model)
    resumed_optimizer = torch.optim.AdamW(resumed.named_parameters(), weight_decay=0.1)
    resumed_optimizer.load_state_dict(copy.deepcopy(saved))
    assert resumed.fc1.weight not in resumed_optimizer.state
    for m, o in ((model, optimizer), (resumed, resumed_optimizer)):
        m.fc1.requires_grad_(True)
        train(m, o, steps=2)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))
    assert int(resumed_optimizer.state[resumed.fc1.weight]["step"]) == 2


def test_set_optimizer_state_dict_by_name(ns):
    """The page's paragraph on torch.distributed.checkpoint's set_optimizer_state_dict."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions, get_optimizer_state_dict, set_optimizer_state_dict)

    full = StateDictOptions(full_state_dict=True)
    old_copy = copy.deepcopy(ns["old"])
    plain = torch.optim.Adam(old_copy.parameters())  # built from parameters(): no param_names
    ns["train"](old_copy, plain)
    saved = get_optimizer_state_dict(old_copy, plain, options=full)

    def load(model, named=False):
        optimizer = torch.optim.Adam(model.named_parameters() if named else model.parameters())
        set_optimizer_state_dict(model, optimizer, saved, options=full)
        return optimizer

    model = ns["Reordered"]()  # by name: each state on its own parameter
    optimizer = load(model)
    assert torch.equal(optimizer.state[model.fc1.weight]["exp_avg"],
                       plain.state[old_copy.fc1.weight]["exp_avg"])
    with pytest.raises(RuntimeError) as info:  # a new layer: refused...
        load(ns["Deeper"]())
    assert_quoted(PAGE, f"{info.value}")
    model = ns["Deeper"]()  # ...unless strict=False: it starts without state
    optimizer = torch.optim.Adam(model.parameters())
    set_optimizer_state_dict(model, optimizer, saved,
                             options=StateDictOptions(full_state_dict=True, strict=False))
    # not "without state": zero moments at step 1, what a step with zero gradients leaves
    fc3 = optimizer.state[model.fc3.weight]
    assert int(fc3["step"]) == 1 and not fc3["exp_avg"].any() and not fc3["exp_avg_sq"].any()
    assert int(optimizer.state[model.fc1.weight]["step"]) == 3
    assert len(load(ns["Shallow"]()).state) == 4  # a layer removed: dropped, no word

    class FineTune(ns["Net"]):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 7)

    model = FineTune()
    optimizer = load(model)  # another shape: loaded as it is, no word
    assert optimizer.state[model.head.weight]["exp_avg"].shape == (4, 8) != model.head.weight.shape

    # a checkpoint of an optimizer built from named_parameters(), with a layer removed
    saved = get_optimizer_state_dict(ns["old"], ns["old_optimizer"], options=full)
    with pytest.raises(KeyError) as info:
        load(ns["Shallow"](), named=True)
    assert_quoted(PAGE, f"KeyError: {info.value}")

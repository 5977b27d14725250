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


# --- wrappers stacked, groups in another order, optimizers whose state is not per element ---

def _named(names, model):
    """An Adam over `model`'s parameters under the given names (a wrapper's view of them)."""
    return torch.optim.Adam(list(zip(names, model.parameters())))


@pytest.mark.parametrize("prefix", ["module._orig_mod.", "_orig_mod.module.", "module.module.",
                                    "_fsdp_wrapped_module._checkpoint_wrapped_module.",
                                    "module._orig_mod._checkpoint_wrapped_module."])
def test_load_by_name_strips_stacked_wrapper_prefixes(ns, prefix):
    model = ns["Net"]()
    names = [prefix + n for n, _ in model.named_parameters()]
    optimizer = _named(names, model)
    assert load_by_name(optimizer, fresh(ns)["optimizer"]) == ([], [])
    assert torch.equal(optimizer.state[model.fc2.weight]["exp_avg"],
                       ns["old_optimizer"].state[ns["old"].fc2.weight]["exp_avg"])
    check_same_parameters(_named(names, ns["Net"]()), fresh(ns)["optimizer"])  # passes
    # and the other way: a checkpoint saved under the stacked names, a plain model
    saved = fresh(ns)["optimizer"]
    saved["param_groups"][0]["param_names"] = names
    assert load_by_name(torch.optim.Adam(ns["Net"]().named_parameters()), saved) == ([], [])
    state = {prefix + k: v for k, v in fresh(ns)["model"].items()}
    assert load_weights(ns["Net"](), state) == []


def test_wrapper_names_that_torch_gives(ns):
    """What the wrappers really call the parameters, under the pinned torch: DataParallel
    around a compiled model, a compiled DataParallel, activation checkpointing applied to
    blocks inside the model (the outermost checkpoint_wrapper hides its own level)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing, checkpoint_wrapper)
    net = ns["Net"]()
    assert next(nn.DataParallel(torch.compile(net)).named_parameters())[0] == \
        "module._orig_mod.fc1.weight"
    assert next(torch.compile(nn.DataParallel(net)).named_parameters())[0] == \
        "_orig_mod.module.fc1.weight"
    assert next(checkpoint_wrapper(net).named_parameters())[0] == "fc1.weight"
    inner = ns["Net"]()
    apply_activation_checkpointing(inner, checkpoint_wrapper_fn=checkpoint_wrapper,
                                   check_fn=lambda m: isinstance(m, nn.Linear))
    assert next(inner.named_parameters())[0] == "fc1._checkpoint_wrapped_module.weight"
    assert next(iter(inner.state_dict())) == "fc1.weight"  # its state_dict hides the level
    stacked = nn.DataParallel(torch.compile(checkpoint_wrapper(ns["Net"]())))
    assert next(stacked.named_parameters())[0] == \
        "module._orig_mod._checkpoint_wrapped_module.fc1.weight"
    for model in (nn.DataParallel(torch.compile(ns["Net"]())), inner, stacked):
        optimizer = torch.optim.Adam(model.named_parameters())
        assert load_by_name(optimizer, fresh(ns)["optimizer"]) == ([], [])
        assert len(optimizer.state) == 6
        assert load_weights(model, fresh(ns)["model"]) == []


def test_load_by_name_refuses_a_checkpoint_none_of_whose_names_is_here(ns):
    model = ns["Net"]()
    optimizer = _named([f"block{i}.w" for i in range(6)], model)
    with pytest.raises(ValueError, match=r"no saved parameter matches group 0 \['block0.w', "
                                         r"'block1.w', 'block2.w'\]; the checkpoint has "
                                         r"\['fc1.weight', 'fc1.bias', 'fc2.weight'\]"):
        load_by_name(optimizer, fresh(ns)["optimizer"])
    assert not optimizer.state


def test_names_that_become_one_without_prefixes_are_refused(ns):
    model = ns["Net"]()
    names = ["fc1.weight", "module.fc1.weight", "fc2.weight", "fc2.bias", "head.weight",
             "head.bias"]
    with pytest.raises(ValueError, match="fc1.weight and module.fc1.weight are both fc1.weight"):
        load_by_name(_named(names, model), fresh(ns)["optimizer"])
    with pytest.raises(ValueError, match="are both fc1.weight"):
        load_weights(model, {**fresh(ns)["model"], "module.fc1.weight": model.fc1.weight})


def _decay_groups(model, decay_first=True, decay=0.1):
    weights = [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [(n, p) for n, p in model.named_parameters() if n.endswith("bias")]
    groups = [{"params": weights, "weight_decay": decay, "lr": 1e-3},
              {"params": biases, "weight_decay": 0.0, "lr": 1e-4}]
    return groups if decay_first else groups[::-1]


def test_load_by_name_matches_groups_by_their_parameters(ns):
    """Decay and no-decay groups built in the other order: each group takes the
    hyperparameters and the state of the saved group that holds its parameters."""
    torch.manual_seed(2)
    model = ns["Net"]()
    optimizer = torch.optim.AdamW(_decay_groups(model))
    ns["train"](model, optimizer)
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})

    resumed = ns["Net"]()
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = torch.optim.AdamW(_decay_groups(resumed, decay_first=False))
    assert load_by_name(resumed_optimizer, saved["optimizer"]) == ([], [])
    biases, weights = resumed_optimizer.param_groups
    assert (biases["weight_decay"], biases["lr"]) == (0.0, 1e-4)
    by_position = torch.optim.AdamW(_decay_groups(ns["Net"](), decay_first=False))
    by_position.load_state_dict(copy.deepcopy(saved["optimizer"]))  # torch's own load
    assert by_position.param_groups[0]["weight_decay"] == 0.1  # the biases decay
    assert (weights["weight_decay"], weights["lr"]) == (0.1, 1e-3)
    assert biases["param_names"][0] == "fc1.bias"
    ns["train"](model, optimizer)
    ns["train"](resumed, resumed_optimizer)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))


def test_load_by_name_refuses_groups_whose_members_changed(ns):
    model = ns["Net"]()
    saved = torch.optim.AdamW(_decay_groups(model)).state_dict()
    named = dict(model.named_parameters())
    moved = [{"params": [(n, named[n]) for n in ("fc1.weight", "fc2.weight", "fc1.bias")]},
             {"params": [(n, named[n]) for n in ("head.weight", "fc2.bias", "head.bias")]}]
    with pytest.raises(ValueError, match=r"group 0 holds parameters of the checkpoint's groups "
                                         r"\[0, 1\] \(fc1.weight, fc1.bias\)"):
        load_by_name(torch.optim.AdamW(moved), saved)
    one = [{"params": list(named.items())[:3]}, {"params": list(named.items())[3:]}]
    with pytest.raises(ValueError, match="holds parameters of the checkpoint's groups"):
        load_by_name(torch.optim.AdamW(one), saved)


def test_load_by_name_with_reordered_groups_needs_the_scheduler(ns):
    torch.manual_seed(3)
    model = ns["Net"]()
    optimizer = torch.optim.AdamW(_decay_groups(model))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(3):
        ns["train"](model, optimizer, steps=1)
        scheduler.step()
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict()})
    resumed = ns["Net"]()
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = torch.optim.AdamW(_decay_groups(resumed, decay_first=False))
    resumed_scheduler = torch.optim.lr_scheduler.StepLR(resumed_optimizer, step_size=2, gamma=0.5)
    with pytest.raises(ValueError, match=r"the groups are in another order than saved \(\[1, 0\]\) "
                                         "and a scheduler is set on this optimizer"):
        load_by_name(resumed_optimizer, saved["optimizer"])
    load_by_name(resumed_optimizer, saved["optimizer"], scheduler=resumed_scheduler,
                 saved_scheduler=saved["scheduler"])
    assert resumed_scheduler.base_lrs == [1e-4, 1e-3]
    for _ in range(4):
        for m, o, s in ((model, optimizer, scheduler),
                        (resumed, resumed_optimizer, resumed_scheduler)):
            ns["train"](m, o, steps=1)
            s.step()
    assert [g["lr"] for g in resumed_optimizer.param_groups] == \
        [g["lr"] for g in optimizer.param_groups][::-1]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))


def test_adafactor_state_loads_by_name_and_passes_the_check(ns):
    """Adafactor keeps factored statistics: row_var (rows, 1) and col_var (1, columns) for a
    matrix, variance for a vector. They do not have the parameter's shape, and still fit."""
    torch.manual_seed(4)
    model = ns["Net"]()
    optimizer = torch.optim.Adafactor(model.named_parameters(), lr=1e-2)
    ns["train"](model, optimizer)
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    assert saved["optimizer"]["state"][0]["row_var"].shape == (8, 1)
    assert saved["optimizer"]["state"][0]["col_var"].shape == (1, 8)
    assert saved["optimizer"]["state"][1]["variance"].shape == (8,)

    resumed = ns["Net"]()
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = torch.optim.Adafactor(resumed.named_parameters(), lr=1e-2)
    check_same_parameters(resumed_optimizer, saved["optimizer"])
    assert load_by_name(resumed_optimizer, saved["optimizer"]) == ([], [])
    ns["train"](model, optimizer)
    ns["train"](resumed, resumed_optimizer)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))

    # a head of another shape is still refused, by its factored statistics
    wide = ns["Net"]()
    wide.head = nn.Linear(8, 7)
    with pytest.raises(ValueError, match=r"head.weight: saved row_var has shape \(4, 1\), "
                                         r"the parameter \(7, 8\)"):
        load_by_name(torch.optim.Adafactor(wide.named_parameters()), saved["optimizer"])
    with pytest.raises(ValueError, match=r"head.weight has shape \(7, 8\), its saved row_var"):
        check_same_parameters(torch.optim.Adafactor(wide.named_parameters()), saved["optimizer"])


def test_every_scheduler_but_reduce_on_plateau_sets_initial_lr(ns):
    """What load_by_name's refusal of reordered groups relies on, as the page says."""
    from torch.optim import lr_scheduler as sched
    for make in (lambda o: sched.StepLR(o, 2), lambda o: sched.LambdaLR(o, lambda s: 1.0),
                 lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=5),
                 lambda o: sched.CyclicLR(o, 0.01, 0.1),
                 lambda o: sched.SequentialLR(o, [sched.ConstantLR(o),
                                                  sched.ExponentialLR(o, 0.9)], [2])):
        optimizer = torch.optim.SGD(ns["Net"]().parameters(), lr=0.1, momentum=0.9)
        make(optimizer)
        assert "initial_lr" in optimizer.param_groups[0]
    optimizer = torch.optim.SGD(ns["Net"]().parameters(), lr=0.1)
    sched.ReduceLROnPlateau(optimizer)
    assert "initial_lr" not in optimizer.param_groups[0]
    with pytest.raises(ValueError, match="give both scheduler= and saved_scheduler=, or neither"):
        load_by_name(torch.optim.Adam(ns["Net"]().named_parameters()), fresh(ns)["optimizer"],
                     scheduler=sched.ReduceLROnPlateau(optimizer))

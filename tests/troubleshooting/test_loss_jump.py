"""The loss jumps after resuming (docs/troubleshooting/loss-jump.md): the claims its blocks do
not show. The definitions are the page's own sections of snippets/troubleshooting/loss_jump.py,
run once per module in a temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

import pytest
import torch

from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "troubleshooting" / "loss_jump.py"
DEFINITIONS = ("running_example", "reference", "check_lr", "mistake_lr", "check_steps",
               "mistake_steps", "check_order", "mistake_order", "check_scaler",
               "mistake_scaler", "check_ema", "mistake_ema", "check_data", "mistake_data",
               "check_rng", "mistake_rng", "check_mode", "mistake_mode", "check_dtype",
               "mistake_dtype", "diagnose")
# mistake -> the checklist items (1-based) that find it; all others must stay silent
FOUND_BY = {"scheduler_built_after_loading": [1], "optimizer_built_again": [1, 2],
            "layers_defined_in_another_order": [3], "scaler_built_again": [4],
            "ema_saved_as_model": [5], "data_order_not_restored": [6],
            "module_built_after_restoring": [7], "left_in_eval_mode": [8],
            "saved_in_bfloat16": [9]}
JUMPS = {"scheduler_built_after_loading", "optimizer_built_again", "ema_saved_as_model"}


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    namespace = {"__name__": "loss_jump_test"}
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("loss-jump"))
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LambdaLR warns when the scaler skips a step
            exec(compile(section_source(SNIPPET, *DEFINITIONS), str(SNIPPET), "exec"), namespace)
        namespace["cwd"] = os.getcwd()
    finally:
        os.chdir(old)
    return namespace


@pytest.fixture
def here(ns, monkeypatch):
    monkeypatch.chdir(ns["cwd"])  # the checkpoint files of the page
    return ns


def _findings(ns, run, saved):
    return [i + 1 for i, found in enumerate(ns["diagnose"](saved, run).values()) if found]


@pytest.mark.parametrize("mistake", list(FOUND_BY))
def test_each_mistake_is_found_by_its_item_and_changes_the_run(here, mistake):
    ns = here
    run, saved = ns[mistake]()
    assert _findings(ns, run, saved) == FOUND_BY[mistake]
    losses = ns["train"](run, ns["SAVE_AT"] + ns["AFTER"])
    assert losses != ns["expected"]  # the mistake changes the run
    worst = max(a / b for a, b in zip(losses, ns["expected"]))
    assert (worst >= 1.3) == (mistake in JUMPS), worst


def test_the_checks_change_nothing(here):
    """diagnose() before the first step finds nothing on a right resume, and the run that
    follows is still the uninterrupted one, loss for loss (the checks draw no random number)."""
    ns = here
    run = ns["resume"]()
    assert _findings(ns, run, ns["checkpoint"]) == []
    assert ns["train"](run, ns["SAVE_AT"] + ns["AFTER"]) == ns["expected"]


def test_checks_compare_every_parameter_group(ns):
    """Two groups with their own learning rates: check_lr and check_order name the group."""
    check_lr, check_order = ns["check_lr"], ns["check_order"]
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))

    def build(swap=False):
        named = dict(model.named_parameters())
        decay = [(n, named[n]) for n in ("0.weight", "1.weight")]
        no_decay = [(n, named[n]) for n in ("0.bias", "1.bias")]
        if swap:
            decay.reverse()
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                       {"params": no_decay, "weight_decay": 0.0, "lr": 1e-4}],
                                      lr=1e-3)
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 10)

    optimizer, scheduler = build()
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}

    resumed, resumed_scheduler = build(swap=True)
    resumed.load_state_dict(saved["optimizer"])
    resumed_scheduler.load_state_dict(saved["scheduler"])
    assert check_lr(saved, resumed, resumed_scheduler) == []
    assert check_order(saved, model, resumed) == [
        "group 0, position 0: 1.weight, saved 0.weight",
        "group 0, position 1: 0.weight, saved 1.weight"]
    resumed.param_groups[1]["lr"] = 1e-3
    assert check_lr(saved, resumed, resumed_scheduler) == ["group 1: lr 0.001, saved 0.0001"]

    plain = torch.optim.Adam(model.parameters())
    plain_saved = {"optimizer": plain.state_dict()}
    assert check_order(plain_saved, model, plain) == [
        "no names saved: build the optimizer with model.named_parameters()"]


def test_a_fresh_adam_moves_every_weight_by_lr_at_its_first_step():
    p = torch.nn.Parameter(torch.zeros(5))
    adam = torch.optim.Adam([p], lr=0.03)
    p.grad = torch.tensor([3.0, -0.001, 2e-3, -40.0, 0.5])
    adam.step()
    assert torch.allclose(p.detach(), -0.03 * p.grad.sign(), rtol=1e-4)


def test_the_scheduler_mistake_climbs_back_to_the_peak_in_the_warm_up(here):
    ns = here
    run, _ = ns["scheduler_built_after_loading"]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns["train"](run, ns["SAVE_AT"] + ns["WARMUP"] - 1)
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(3e-2)
    assert ns["checkpoint"]["optimizer"]["param_groups"][0]["lr"] < 3e-2 / 5


def test_a_new_scaler_skips_steps(here):
    ns = here
    run, saved = ns["scaler_built_again"]()
    first = run.optimizer.param_groups[0]["params"][0]
    before = int(run.optimizer.state[first]["step"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns["train"](run, ns["SAVE_AT"] + ns["AFTER"])
    assert saved["scaler"]["scale"] < 65536.0
    assert int(run.optimizer.state[first]["step"]) - before < ns["AFTER"]


def test_the_data_mistake_repeats_and_misses_samples(here):
    """Stopped in the middle of the epoch, resumed with another order: the epoch's samples
    are not each used once."""
    ns = here
    run, saved = ns["data_order_not_restored"]()
    i = saved["step"] % ns["BATCHES"]
    assert i != 0  # the middle of an epoch
    seen = torch.cat([saved["order"][:i * ns["BATCH"]], run.order[i * ns["BATCH"]:]])
    assert len(set(seen.tolist())) < len(seen)


def test_eval_mode_stops_batchnorm_statistics_and_the_mode_is_not_saved(here):
    ns = here
    run, _ = ns["left_in_eval_mode"]()
    bn = run.model.inp[1]
    before = bn.running_mean.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns["train"](run, ns["SAVE_AT"] + 2)
    assert torch.equal(bn.running_mean, before)
    assert not any("training" in key for key in run.model.state_dict())


def test_load_casts_adam_state_to_the_parameters_dtype():
    p = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([p])
    p.grad = torch.ones(3)
    adam.step()
    state = adam.state_dict()
    state["state"][0]["exp_avg"] = state["state"][0]["exp_avg"].to(torch.bfloat16)
    fresh = torch.optim.Adam([p])
    fresh.load_state_dict(state)
    assert fresh.state[p]["exp_avg"].dtype == torch.float32


def test_load_replaces_param_names_with_the_files(here):
    ns = here
    run, _ = ns["layers_defined_in_another_order"]()
    names = {id(p): n for n, p in run.model.named_parameters()}
    held = [names[id(p)] for p in run.optimizer.param_groups[0]["params"]]
    assert held != run.optimizer.param_groups[0]["param_names"]
    assert run.optimizer.param_groups[0]["param_names"] \
        == ns["checkpoint"]["optimizer"]["param_groups"][0]["param_names"]


def test_in_eval_mode_dropout_is_off_and_batchnorm_uses_its_running_statistics(here):
    ns = here
    run, _ = ns["left_in_eval_mode"]()
    x = ns["inputs"][:8]
    with torch.no_grad():
        assert torch.equal(run.model(x), run.model(x))  # no dropout mask
        bn = run.model.inp[1]
        h = run.model.inp[0](x)
        expected = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        assert torch.allclose(bn(h), expected, atol=1e-5)


def test_bfloat16_weights_load_into_float32_as_rounded_values(here):
    ns = here
    run, saved = ns["saved_in_bfloat16"]()
    weight = run.model.a.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight.detach(), saved["model"]["a.weight"].float())
    assert not torch.equal(weight.detach(), ns["checkpoint"]["model"]["a.weight"])

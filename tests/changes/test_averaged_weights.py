"""Averaged weights (docs/changes/averaged-weights.md): the claims its blocks do not show.

The definitions are the page's own sections of snippets/changes/averaged_weights.py. Every
resume is compared with an uninterrupted run in this process (bitwise, on the CPU).
"""

from __future__ import annotations

import copy
import traceback

import pytest
import torch

from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source

PAGE = "changes/averaged-weights.md"
SNIPPET = SNIPPETS / "changes" / "averaged_weights.py"
PARTS = ("model", "optimizer", "ema", "swa", "scheduler", "swa_scheduler")


@pytest.fixture(scope="module")
def ns():
    namespace = {"__name__": "averaged_weights_test"}
    exec(compile(section_source(SNIPPET, "setup", "training_state", "resume"), str(SNIPPET),
                 "exec"), namespace)
    reference = namespace["build"]()
    namespace["train"](reference, namespace["TOTAL_STEPS"])
    namespace["reference"] = reference
    return namespace


_SAVED: dict[int, dict] = {}


def saved_at(ns, stop):
    """The checkpoint of a run stopped after `stop` steps (trained once per stop)."""
    if stop not in _SAVED:
        run = ns["build"]()
        ns["train"](run, stop)
        _SAVED[stop] = copy.deepcopy(ns["training_state"](run))
    # A copy each time: load_state_dict keeps the tensors it is given, and training mutates them.
    return copy.deepcopy(_SAVED[stop])


def resume_from(ns, state, skip=()):
    run = ns["build"]()
    for part in PARTS:
        if part not in skip:
            getattr(run, part).load_state_dict(state[part])
    if "step" not in skip:
        run.step = state["step"]
    ns["train"](run, ns["TOTAL_STEPS"])
    return run


def all_equal(ns, run):
    return all(ns["same"](getattr(run, p), getattr(ns["reference"], p)) for p in ("model", "ema", "swa"))


@pytest.mark.parametrize("stop", [5, 15])
def test_resume_is_bitwise_equal_before_and_during_swa(ns, stop):
    assert all_equal(ns, resume_from(ns, saved_at(ns, stop)))


@pytest.mark.parametrize("part, stop", [("model", 15), ("optimizer", 15), ("ema", 15),
                                        ("swa", 15), ("swa_scheduler", 15), ("step", 15),
                                        ("scheduler", 5)])
def test_each_part_is_needed(ns, part, stop):
    """The cosine scheduler only steps before SWA_START, SWALR only while it anneals: each
    is checked at a step where it still matters."""
    assert not all_equal(ns, resume_from(ns, saved_at(ns, stop), skip={part}))


def test_checkpoint_loads_with_weights_only(ns, tmp_path):
    torch.save(saved_at(ns, 15), tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert int(state["ema"]["n_averaged"]) == 15 and int(state["swa"]["n_averaged"]) == 5


@pytest.mark.parametrize("which", ["ema", "swa"])
def test_with_count_zero_the_next_update_copies_the_model(ns, which):
    run = ns["build"]()
    for part in PARTS:
        getattr(run, part).load_state_dict(saved_at(ns, 15)[part])
    averaged = getattr(run, which)
    averaged.n_averaged.zero_()
    averaged.update_parameters(run.model)
    assert all(torch.equal(a, b) for a, b in zip(averaged.module.parameters(),
                                                 run.model.parameters()))


def test_the_ema_count_only_has_to_be_above_zero(ns):
    state = saved_at(ns, 15)
    state["ema"]["n_averaged"].fill_(1)  # instead of 15
    run, reference = resume_from(ns, state), ns["reference"]
    assert ns["same"](run.ema.module, reference.ema.module)  # the same averaged weights
    assert int(run.ema.n_averaged) == 16 != int(reference.ema.n_averaged)


def test_the_quoted_error(ns):
    plain = ns["make_model"]()
    with pytest.raises(RuntimeError) as info:
        plain.load_state_dict(saved_at(ns, 15)["ema"])
    assert_quoted(PAGE, f"RuntimeError: {info.value}")


# --- the blocks a reader copies run as pasted, in a fresh session ---------------------------

def fresh(section):
    namespace = {}
    exec(compile(section_source(SNIPPET, section), str(SNIPPET), "exec"), namespace)
    return namespace


def test_training_state_runs_as_pasted(ns):
    run = ns["build"]()
    assert set(fresh("training_state")["training_state"](run)) == {*PARTS, "step"}


def test_plain_state_dict_runs_as_pasted(ns):
    state = saved_at(ns, 15)["ema"]
    plain = ns["make_model"]()
    plain.load_state_dict(fresh("plain_state_dict")["plain_state_dict"](state))
    assert "n_averaged" in state  # the checkpoint's dict is left as it was


def test_restore_count_runs_as_pasted(ns):
    run = ns["build"]()
    fresh("restore_count")["restore_count"](run.swa, 5)
    assert int(run.swa.n_averaged) == 5


def test_export_runs_as_pasted(ns, tmp_path):
    export = fresh("export")["export_averaged"]
    reference = ns["reference"]
    swa = copy.deepcopy(reference.swa)
    export(swa, tmp_path / "swa.pt", loader=ns["batches"])
    state = torch.load(tmp_path / "swa.pt", weights_only=True)
    assert list(state) == list(ns["make_model"]().state_dict())
    # update_bn recomputed the statistics, which the SWA had copied from the trained model
    assert not torch.equal(state["1.running_mean"], reference.model[1].running_mean)
    assert [p.name for p in tmp_path.iterdir()] == ["swa.pt"]  # no temporary file left


# --- what the page says about SWALR, the SWA count, strict=False and BatchNorm -------------

def test_swalr_anneals_from_the_cosine_end_to_swa_lr_over_ten_steps(ns):
    run, lrs = ns["build"](), []
    for stop in range(1, ns["TOTAL_STEPS"] + 1):
        ns["train"](run, stop)
        lrs.append(run.optimizer.param_groups[0]["lr"])
    start = ns["SWA_START"]
    assert lrs[start - 1] == pytest.approx(2e-3)  # CosineAnnealingLR's eta_min
    assert all(2e-3 < lr < 5e-3 for lr in lrs[start:start + 9])
    assert lrs[start + 9:] == [pytest.approx(5e-3)] * (ns["TOTAL_STEPS"] - start - 9)


def test_the_swa_count_must_be_exact(ns):
    state = saved_at(ns, 15)
    state["swa"]["n_averaged"].fill_(1)  # instead of 5
    run = resume_from(ns, state)
    assert not ns["same"](run.swa.module, ns["reference"].swa.module)


def test_strict_false_loads_nothing_from_an_averaged_state_dict(ns):
    plain = ns["make_model"]()
    before = [t.clone() for t in plain.state_dict().values()]
    result = plain.load_state_dict(saved_at(ns, 15)["ema"], strict=False)  # no error
    assert result.missing_keys and result.unexpected_keys
    assert all(torch.equal(a, b) for a, b in zip(before, plain.state_dict().values()))


def test_the_checkpoint_holds_the_swa_statistics_copied_from_the_model(ns):
    state = saved_at(ns, 15)
    for name in ("running_mean", "running_var"):
        assert torch.equal(state["swa"][f"module.1.{name}"], state["model"][f"1.{name}"])
        assert not torch.equal(state["ema"][f"module.1.{name}"], state["model"][f"1.{name}"])


# --- adding the averages to a run whose checkpoints have none --------------------------------

def old_run_state(ns):
    """The checkpoint of the run before it averaged (as the page's old_checkpoint block)."""
    torch.manual_seed(0)
    model = ns["make_model"]()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = ns["CosineAnnealingLR"](optimizer, T_max=ns["SWA_START"], eta_min=2e-3)
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "step": 0}


def test_an_optimizer_state_from_before_swalr_fails_at_its_first_step(ns):
    run = ns["build"]()
    assert all("swa_lr" in g for g in run.optimizer.param_groups)  # SWALR's constructor wrote it
    state = old_run_state(ns)
    for part in ("model", "optimizer", "scheduler"):
        getattr(run, part).load_state_dict(state[part])  # no error here...
    assert not any("swa_lr" in g for g in run.optimizer.param_groups)
    with pytest.raises(KeyError) as info:
        ns["train"](run, ns["TOTAL_STEPS"])
    assert run.step == ns["SWA_START"]  # ...but at SWALR's first step
    assert_quoted(PAGE, traceback.format_exception_only(info.type, info.value)[-1].strip())


def test_restore_swa_lr_runs_as_pasted(ns):
    run = ns["build"]()
    run.optimizer.load_state_dict(old_run_state(ns)["optimizer"])
    fresh("restore_swa_lr")["restore_swa_lr"](run.optimizer, swa_lr=5e-3)
    assert [g["swa_lr"] for g in run.optimizer.param_groups] == [5e-3]
    ns["train"](run, ns["TOTAL_STEPS"])  # SWALR steps


def test_resume_refuses_a_checkpoint_from_before_averaging_and_names_the_keys(ns, tmp_path):
    ns["save_checkpoint"](old_run_state(ns), str(tmp_path), step=0)
    from checkpoint_files import CheckpointError

    logged = []
    with pytest.raises(CheckpointError):
        ns["load_latest"](str(tmp_path), keys=ns["KEYS"], log=logged.append)
    assert "missing keys ['ema', 'swa', 'swa_scheduler']" in logged[0]

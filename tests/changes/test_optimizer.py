"""Claims of docs/changes/optimizer.md that its blocks do not assert themselves: a different
optimizer, batch size or number of processes on resume.

The definitions are the page's own `switch_optimizer` and `position` sections of
snippets/changes/optimizer.py.
"""

from __future__ import annotations

import traceback

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DistributedSampler

from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source, sections_namespace

PAGE = "changes/optimizer.md"
SNIPPET = SNIPPETS / "changes" / "optimizer.py"
NS = sections_namespace(SNIPPET, "switch_optimizer", "position", module="changed_optimizer_test")
switch_optimizer, EpochSampler, cosine_in_samples = (
    NS["switch_optimizer"], NS["EpochSampler"], NS["cosine_in_samples"])


def _model(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)


def _step(model, optimizer, seed=0):
    p = next(model.parameters())
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(seed)).to(p)
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()


def _trained(cls, steps=3, **kwargs):
    model = _model()
    optimizer = cls(model.parameters(), **kwargs)
    for i in range(steps):
        _step(model, optimizer, i)
    return model, optimizer


def _message(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


# --- the errors the page quotes ------------------------------------------------------------

def test_adam_state_in_sgd_fails_at_the_first_step():
    model, adam = _trained(torch.optim.Adam)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd.load_state_dict(adam.state_dict())
    with pytest.raises(KeyError) as info:
        _step(model, sgd)
    assert _message(info.value) == "KeyError: 'momentum'"
    assert_quoted(PAGE, _message(info.value))


def test_sgd_momentum_state_in_adam_fails_on_load():
    model, sgd = _trained(torch.optim.SGD, lr=0.1, momentum=0.9)
    assert all(set(s) == {"momentum_buffer"} for s in sgd.state_dict()["state"].values())
    with pytest.raises(KeyError) as info:
        torch.optim.Adam(model.parameters()).load_state_dict(sgd.state_dict())
    assert _message(info.value) == "KeyError: 'step'"
    assert_quoted(PAGE, _message(info.value))


def test_sgd_without_momentum_has_no_state_and_adam_fails_at_the_first_step():
    model, sgd = _trained(torch.optim.SGD, lr=0.1)
    assert sgd.state_dict()["state"] == {}
    adam = torch.optim.Adam(model.parameters())
    adam.load_state_dict(sgd.state_dict())  # loads
    with pytest.raises(KeyError) as info:
        _step(model, adam)
    assert _message(info.value) == "KeyError: 'betas'"
    assert_quoted(PAGE, _message(info.value))


def test_adam_state_without_moments_fails_at_the_first_step():
    model, adam = _trained(torch.optim.Adam)
    saved = adam.state_dict()
    saved["state"] = {i: {"step": s["step"]} for i, s in saved["state"].items()}
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(saved)
    with pytest.raises(KeyError) as info:
        _step(model, fresh)
    assert _message(info.value) == "KeyError: 'exp_avg'"
    assert_quoted(PAGE, _message(info.value))


# --- what load_state_dict carries over across classes ---------------------------------------

HYPER = {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-4, "amsgrad": True}


@pytest.mark.parametrize("old, new", [(torch.optim.Adam, torch.optim.AdamW),
                                      (torch.optim.AdamW, torch.optim.Adam)])
@pytest.mark.parametrize("through_disk", [False, True])
def test_every_hyperparameter_comes_from_the_file(old, new, through_disk, tmp_path):
    model, saved_optimizer = _trained(old, **HYPER)
    saved = saved_optimizer.state_dict()
    if through_disk:
        torch.save(saved, tmp_path / "opt.pt")
        saved = torch.load(tmp_path / "opt.pt", weights_only=True)
    optimizer = new(model.parameters(), lr=1.0, betas=(0.5, 0.5), eps=0.1, weight_decay=0.3)
    for _ in range(2):  # a second load changes nothing
        optimizer.load_state_dict(saved)
        group = optimizer.param_groups[0]
        assert {k: group[k] for k in HYPER} == HYPER
        # AdamW forces decoupled decay; Adam takes the file's flag
        assert group["decoupled_weight_decay"] is True if new is torch.optim.AdamW else \
            group["decoupled_weight_decay"] is (old is torch.optim.AdamW)
    _step(model, optimizer)


def test_adamw_stays_decoupled_even_when_the_file_says_otherwise():
    model, adam = _trained(torch.optim.Adam, weight_decay=1e-4)
    saved = adam.state_dict()
    assert saved["param_groups"][0]["decoupled_weight_decay"] is False
    adamw = torch.optim.AdamW(model.parameters())
    adamw.load_state_dict(saved)
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True


def test_sgd_ignores_adam_moments_and_saves_them_again():
    """With the groups repaired by hand, SGD starts its own momentum_buffer from the gradient
    and carries exp_avg, exp_avg_sq and step untouched."""
    model, adam = _trained(torch.optim.Adam)
    saved = adam.state_dict()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd.load_state_dict(saved)
    sgd.param_groups[0].update(momentum=0.9, dampening=0)
    before = {i: {k: v.clone() for k, v in s.items()} for i, s in saved["state"].items()}
    _step(model, sgd)
    after = sgd.state_dict()["state"]
    for i, p in enumerate(model.parameters()):
        assert set(after[i]) == {"step", "exp_avg", "exp_avg_sq", "momentum_buffer"}
        assert torch.equal(after[i]["momentum_buffer"], p.grad)  # a new buffer: the gradient
        assert all(torch.equal(after[i][k], before[i][k]) for k in before[i])


def test_load_state_dict_keeps_the_tensors_it_is_given():
    """Why switch_optimizer copies: training after load_state_dict changes the dict loaded."""
    model, adam = _trained(torch.optim.Adam)
    saved = adam.state_dict()
    step_before = saved["state"][0]["step"].item()
    exp_avg_before = saved["state"][0]["exp_avg"].clone()
    other = torch.optim.Adam(model.parameters())
    other.load_state_dict(saved)
    assert other.state[next(model.parameters())]["exp_avg"] is saved["state"][0]["exp_avg"]
    _step(model, other)
    assert saved["state"][0]["step"].item() == step_before + 1
    assert not torch.equal(saved["state"][0]["exp_avg"], exp_avg_before)


# --- switch_optimizer -----------------------------------------------------------------------

def test_switch_from_adam_to_adamw_without_decay_continues_adam_bitwise(tmp_path):
    """The carried moments and step are what AdamW would have had: with weight_decay=0 the
    switched run continues the uninterrupted Adam run bitwise, through the disk."""
    reference, adam_ref = _trained(torch.optim.Adam, steps=6, lr=1e-2)
    model, adam = _trained(torch.optim.Adam, steps=3, lr=1e-2)
    torch.save({"model": model.state_dict(), "optimizer": adam.state_dict()}, tmp_path / "c.pt")
    checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    adamw = torch.optim.AdamW(resumed.parameters(), lr=1e-2, weight_decay=0.0)
    switch_optimizer(adamw, checkpoint["optimizer"])
    switch_optimizer(adamw, checkpoint["optimizer"])  # a second call: the same state
    for i in range(3, 6):
        _step(resumed, adamw, i)
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), reference.parameters()))
    assert checkpoint["optimizer"]["state"][0]["step"].item() == 3  # the source is unchanged


def test_switch_casts_to_the_parameters_dtype():
    _, adam = _trained(torch.optim.Adam)
    model = _model(torch.float64)
    adamw = torch.optim.AdamW(model.parameters())
    switch_optimizer(adamw, adam.state_dict())
    assert all(adamw.state[p]["exp_avg"].dtype == torch.float64 for p in model.parameters())
    _step(model, adamw)


def test_switch_refuses_state_without_moments_with_a_clear_message():
    model, sgd = _trained(torch.optim.SGD, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"parameter 0: the old optimizer's state has no "
                                         r"\['step', 'exp_avg', 'exp_avg_sq'\] \(it has "
                                         r"\['momentum_buffer'\]\).*warm_up"):
        switch_optimizer(torch.optim.Adam(model.parameters()), sgd.state_dict())


def test_switch_refuses_other_groups():
    _, adam = _trained(torch.optim.Adam)
    model = _model()
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    adamw = torch.optim.AdamW([{"params": weights}, {"params": biases, "weight_decay": 0.0}])
    with pytest.raises(ValueError, match=r"groups of sizes \[4\] .* \[2, 2\]"):
        switch_optimizer(adamw, adam.state_dict())
    assert len(adamw.state) == 0  # nothing loaded


# --- position in samples, processes, schedule -----------------------------------------------

@pytest.mark.parametrize("num_samples", [10, 256])
@pytest.mark.parametrize("num_replicas", [1, 2, 3])
@pytest.mark.parametrize("epoch", [0, 1])
def test_epoch_sampler_from_the_start_is_distributed_sampler(num_samples, num_replicas, epoch):
    data = list(range(num_samples))
    for rank in range(num_replicas):
        theirs = DistributedSampler(data, num_replicas=num_replicas, rank=rank, shuffle=True, seed=7)
        theirs.set_epoch(epoch)
        ours = EpochSampler(num_samples, 7, epoch, rank=rank, num_replicas=num_replicas)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("before, after", [(2, 3), (3, 1), (1, 4)])
def test_resume_at_another_number_of_processes_sees_the_rest_of_the_epoch(before, after):
    n, start = 100, 36
    order = list(EpochSampler(n, 0, 0))
    ranks = [list(EpochSampler(n, 0, 0, start=start, rank=r, num_replicas=after))
             for r in range(after)]
    assert len({len(r) for r in ranks}) == 1  # as many on every rank: no rank waits
    seen = [i for r in ranks for i in r]
    assert set(seen) == set(order[start:])
    assert len(seen) - len(set(seen)) == -(n - start) % after  # only the padding repeats


def test_schedule_in_samples_is_the_same_curve_at_any_batch_size():
    total = 1024

    def lrs(batch, start=0):
        p = nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([p])
        sched = cosine_in_samples(opt, 1e-2, start, total, batch)
        out = {start: opt.param_groups[0]["lr"]}
        for k in range(1, (total - start) // batch + 1):
            opt.step()
            sched.step()
            out[start + k * batch] = opt.param_groups[0]["lr"]
        return out

    small, large, resumed = lrs(16), lrs(32), lrs(32, start=320)
    assert all(abs(large[s] - small[s]) < 1e-12 for s in large)
    assert all(abs(resumed[s] - small[s]) < 1e-12 for s in resumed)
    assert large[total] < 1e-12


def test_switch_refuses_an_optimizer_without_adam_moments():
    model, adam = _trained(torch.optim.Adam)
    with pytest.raises(ValueError, match="SGD does not use Adam's moments: start it with fresh "
                                         r"state and warm_up\(\)"):
        switch_optimizer(torch.optim.SGD(model.parameters(), lr=0.1), adam.state_dict())


def test_switch_into_amsgrad_needs_its_maximum():
    model, adam = _trained(torch.optim.Adam)
    with pytest.raises(ValueError, match=r"has no \['max_exp_avg_sq'\]"):
        switch_optimizer(torch.optim.AdamW(model.parameters(), amsgrad=True), adam.state_dict())


@pytest.mark.parametrize("flags", [{"fused": True}, {"foreach": False}])
def test_switch_into_other_implementations_continues_close(flags):
    """A fused or for-loop AdamW takes the carried state too; fused keeps `step` as a float32
    tensor on the parameter's device."""
    reference, _ = _trained(torch.optim.Adam, steps=6, lr=1e-2)
    model, adam = _trained(torch.optim.Adam, steps=3, lr=1e-2)
    adamw = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, **flags)
    switch_optimizer(adamw, adam.state_dict())
    for i in range(3, 6):
        _step(model, adamw, i)
    step = adamw.state[next(model.parameters())]["step"]
    assert step.item() == 6 and step.dtype == torch.float32
    assert max((a - b).abs().max().item()
               for a, b in zip(model.parameters(), reference.parameters())) < 1e-5


_NEW: dict = {"__name__": "changed_optimizer_test_new", "torch": torch, "math": __import__("math")}
exec(compile(section_source(SNIPPET, "no_counter", "resume_warmup"), str(SNIPPET), "exec"), _NEW)
position_from_step, resume_warmup = _NEW["position_from_step"], _NEW["resume_warmup"]


@pytest.mark.parametrize("num_samples,batch,accumulation,processes,drop_last", [
    (256, 24, 1, 1, False), (256, 24, 1, 1, True), (250, 16, 3, 1, False),
    (256, 16, 2, 2, False), (100, 8, 1, 4, True), (256, 32, 1, 1, False)])
def test_position_from_step_counts_what_the_old_loop_consumed(
        num_samples, batch, accumulation, processes, drop_last):
    """The old loop, simulated step by step (every rank's batches, an optimizer step after
    each `accumulation` batches and at the end of the epoch): at every step, the position
    from the step count equals the samples the loop had consumed in its epoch."""
    import math

    from torch.utils.data import DataLoader
    ranks = [DataLoader(range(num_samples), batch_size=batch, drop_last=drop_last,
                        sampler=DistributedSampler(range(num_samples), processes, r,
                                                   shuffle=False))
             for r in range(processes)]
    steps_per_epoch = math.ceil(len(ranks[0]) / accumulation)
    per_step = batch * accumulation * processes
    step = 0
    for epoch in range(3):
        consumed = 0
        for i, batches in enumerate(zip(*ranks)):
            consumed += sum(len(b) for b in batches)
            if (i + 1) % accumulation == 0 or i + 1 == len(ranks[0]):
                step += 1
                e, into = position_from_step(step, steps_per_epoch, per_step)
                if (e, into) != (epoch + 1, 0):  # not the last step of the epoch
                    assert (e, into) == (epoch, consumed), (step, e, into, consumed)


def test_resume_warmup_ramps_every_group_from_its_loaded_lr():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    adam = torch.optim.Adam([{"params": [a], "lr": 1e-2}, {"params": [b], "lr": 1e-3}])
    scheduler = resume_warmup(adam, [4e-2, 2e-3], steps=4)
    seen = []
    for _ in range(6):
        seen.append([g["lr"] for g in adam.param_groups])
        adam.step()
        scheduler.step()
    assert seen[0] == pytest.approx([1e-2, 1e-3])
    assert seen[2] == pytest.approx([2.5e-2, 1.5e-3])
    assert seen[4] == pytest.approx([4e-2, 2e-3]) and seen[5] == pytest.approx([4e-2, 2e-3])


def test_resume_warmup_refuses_a_learning_rate_count_that_is_not_the_group_count():
    adam = torch.optim.Adam([{"params": [nn.Parameter(torch.zeros(1))]},
                             {"params": [nn.Parameter(torch.zeros(1))]}])
    with pytest.raises(ValueError, match="1 learning rates for 2 parameter groups"):
        resume_warmup(adam, [1e-3], steps=5)

"""Learning-rate schedulers on resume (docs/changes/schedulers.md): the claims its blocks do
not show. The definitions are the page's own `families` section of
snippets/changes/schedulers.py; the plot's data comes from scripts/plots.py.
"""

from __future__ import annotations

import copy
import inspect
import re

import pytest
import torch
from torch.optim import lr_scheduler as sched

from cookbook_testing.pages import (DOCS, ROOT, SNIPPETS, assert_quoted, both_languages, lang_of,
                                    load_module, section_source, sections_namespace)

PAGE = "changes/schedulers.md"
SNIPPET = SNIPPETS / "changes" / "schedulers.py"
NAMES = ["StepLR", "MultiStepLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
         "OneCycleLR", "CyclicLR", "LambdaLR", "LinearLR", "SequentialLR", "ChainedScheduler",
         "ReduceLROnPlateau"]


@pytest.fixture(scope="module")
def ns():
    return sections_namespace(SNIPPET, "families")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # checkpoint_at writes checkpoint.pt


def test_the_page_covers_the_eleven(ns):
    assert list(ns["SCHEDULERS"]) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_resumed_curve_equals_the_uninterrupted_one(ns, name):
    """Stopped anywhere (first step, page's stop, late), resumed from the file: the learning
    rate and beta1 of every step are equal float for float; without the scheduler's state
    they are not."""
    reference = ns["uninterrupted"](name)
    for stop in (1, ns["STOP"], 17):
        checkpoint = ns["checkpoint_at"](name, stop)
        optimizer, scheduler = ns["resumed"](name, checkpoint)
        assert reference[:stop] + ns["train"](optimizer, scheduler, stop, ns["STEPS"]) \
            == reference, (name, stop)
        # a second resume from the same loaded dict (CyclicLR's load mutates it: resumed()
        # passes a copy) gives the same curve
        optimizer, scheduler = ns["resumed"](name, checkpoint)
        assert ns["train"](optimizer, scheduler, stop, ns["STEPS"]) == reference[stop:]
    optimizer, scheduler = ns["resumed"](name, ns["checkpoint_at"](name), load_scheduler=False)
    assert ns["train"](optimizer, scheduler, ns["STOP"], ns["STEPS"]) != reference[ns["STOP"]:]


def test_the_recipe_resumes_a_model_exactly(tmp_path):
    """The copyable `recipe` section: build both, load both, in a fresh namespace."""
    recipe = sections_namespace(SNIPPET, "recipe")
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 2)

    def steps(model, optimizer, scheduler, n):
        lrs = []
        for _ in range(n):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        return lrs

    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    start = copy.deepcopy(model.state_dict())
    optimizer, scheduler = recipe["build"](model, total_steps=12)
    reference = steps(model, optimizer, scheduler, 12)

    model2 = torch.nn.Linear(3, 2)
    model2.load_state_dict(start)
    optimizer, scheduler = recipe["build"](model2, total_steps=12)
    first = steps(model2, optimizer, scheduler, 5)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": 5}, tmp_path / "ck.pt")
    optimizer, scheduler, step = recipe["resume"](model2, tmp_path / "ck.pt", total_steps=12)
    assert step == 5
    assert first + steps(model2, optimizer, scheduler, 7) == reference
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))


def test_messages_the_page_quotes(ns):
    """Each message, triggered under the pinned torch and quoted verbatim on both pages."""
    # OneCycleLR stepped past total_steps
    optimizer, scheduler = ns["resumed"]("OneCycleLR", ns["checkpoint_at"]("OneCycleLR", 24))
    with pytest.raises(ValueError) as e:
        ns["train"](optimizer, scheduler, 24, 25)
    assert str(e.value) == "Tried to step 25 times. The specified number of total steps is 24"
    assert_quoted(PAGE, f"ValueError: {e.value}")

    # last_epoch on an optimizer without initial_lr
    with pytest.raises(KeyError) as e:
        sched.StepLR(ns["make_optimizer"](), step_size=3, last_epoch=4)
    message = e.value.args[0]
    assert message.startswith("param 'initial_lr' is not specified in param_groups[0]")
    assert_quoted(PAGE, f"KeyError: {message}")

    # CyclicLR: a state dict loads once
    state = ns["checkpoint_at"]("CyclicLR")["scheduler"]
    scheduler = ns["SCHEDULERS"]["CyclicLR"](ns["make_optimizer"]())
    scheduler.load_state_dict(copy.deepcopy(state))
    scheduler.load_state_dict(state)
    assert "_scale_fn_custom" not in state
    with pytest.raises(KeyError) as e:
        scheduler.load_state_dict(state)
    assert_quoted(PAGE, f"KeyError: {e.value}")

    # set_hyperparameters refuses the composites and CyclicLR
    import checkpoint_files
    with pytest.raises(TypeError) as e:
        checkpoint_files.set_hyperparameters(scheduler.optimizer, scheduler, lr=0.05)
    assert_quoted(PAGE, f"TypeError: {e.value}")


def test_cycle_momentum_sets_sgd_momentum_too():
    """The page: CyclicLR and OneCycleLR cycle Adam's beta1 or SGD's momentum."""
    for make in (lambda o: sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2),
                 lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=6)):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        scheduler = make(optimizer)
        seen = set()
        for _ in range(5):
            optimizer.step()
            scheduler.step()
            seen.add(optimizer.param_groups[0]["momentum"])
        assert len(seen) > 2


def test_last_epoch_takes_a_counter_not_the_state(ns):
    """Which schedulers take last_epoch, and what it cannot restore."""
    for name, cls in ((n, getattr(sched, n)) for n in NAMES):
        takes = "last_epoch" in inspect.signature(cls).parameters
        assert takes == (name not in ("ReduceLROnPlateau", "ChainedScheduler")), name
    stop = ns["STOP"]
    checkpoint = ns["checkpoint_at"]("CosineAnnealingWarmRestarts")
    optimizer = ns["make_optimizer"]()
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler = ns["SCHEDULERS"]["CosineAnnealingWarmRestarts"](optimizer, stop - 1)
    assert scheduler.last_epoch == checkpoint["scheduler"]["last_epoch"] == stop
    assert scheduler.T_cur != checkpoint["scheduler"]["T_cur"]  # the restarts are missed

    checkpoint = ns["checkpoint_at"]("SequentialLR")
    optimizer = ns["make_optimizer"]()
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler = ns["SCHEDULERS"]["SequentialLR"](optimizer, stop - 1)
    assert scheduler.last_epoch == stop
    saved = [inner["last_epoch"] for inner in checkpoint["scheduler"]["_schedulers"]]
    assert [inner.last_epoch for inner in scheduler._schedulers] == [0, -1] != saved


def test_the_plot_shows_the_page_curves():
    """The data scripts/plots.py draws: the resumed curve on the uninterrupted one, the
    forgotten one equal up to the stop and off it after, SequentialLR's warm-up at 7x."""
    plots = load_module(ROOT / "scripts" / "plots.py", "plots")
    data, stop = plots.scheduler_curves()
    assert list(data) == plots.FAMILIES and stop == 10
    for name, runs in data.items():
        assert runs["resumed"] == runs["uninterrupted"], name
        assert runs["forgotten"][:stop + 1] == runs["uninterrupted"][:stop + 1], name
        assert runs["forgotten"][stop + 1:] != runs["uninterrupted"][stop + 1:], name
    seq = data["SequentialLR"]
    assert round(max(seq["forgotten"]) / max(seq["uninterrupted"])) == 7
    # each page embeds its language's plot, with alt text in its language
    for path, png in zip(both_languages(PAGE), ("schedulers-resume.png",
                                                "schedulers-resume.ja.png")):
        assert (DOCS / "assets" / "plots" / png).is_file()
        alt = re.search(r"!\[([^\]]+)\]\(\.\./assets/plots/" + re.escape(png) + r"\)",
                        path.read_text(encoding="utf-8"))
        assert alt, f"{path.name} does not embed {png}"
        assert re.search(r"[\u3040-\u30ff]", alt[1]) if lang_of(path) == "ja" else alt[1].isascii()
    assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", v) for v in plots.LABELS["ja"].values())


def test_step_with_an_epoch_warns_and_composites_refuse_it(ns):
    """The two warnings the page quotes, triggered here; SequentialLR and ChainedScheduler
    take no epoch."""
    import warnings
    optimizer = ns["make_optimizer"]()
    scheduler = ns["SCHEDULERS"]["StepLR"](optimizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler.step(3)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert len(messages) == 2 and messages[1].startswith("UserWarning: The epoch parameter")
    assert_quoted(PAGE, *messages)
    for cls in (sched.SequentialLR, sched.ChainedScheduler):
        assert list(inspect.signature(cls.step).parameters) == ["self"]


def test_the_documentation_asks_for_per_batch_steps():
    for cls in (sched.OneCycleLR, sched.CyclicLR):
        assert "`step` should be called after a batch has been used for training." in cls.__doc__
    assert "scheduler.step(epoch + i / iters)" in sched.CosineAnnealingWarmRestarts.step.__doc__


def test_warm_restarts_stepped_per_batch_resume_exactly(tmp_path):
    """CosineAnnealingWarmRestarts with a fractional epoch per batch, stopped mid-epoch."""
    iters, epochs = 4, 6

    def build():
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return optimizer, sched.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2)

    def run(optimizer, scheduler, start, stop):
        lrs = []
        for k in range(start, stop):
            epoch, i = divmod(k, iters)
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step(epoch + i / iters)
        return lrs

    reference = run(*build(), 0, epochs * iters)
    optimizer, scheduler = build()
    first = run(optimizer, scheduler, 0, 11)
    torch.save({"o": optimizer.state_dict(), "s": scheduler.state_dict()}, tmp_path / "c.pt")
    checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
    optimizer, scheduler = build()
    optimizer.load_state_dict(checkpoint["o"])
    scheduler.load_state_dict(checkpoint["s"])
    assert first + run(optimizer, scheduler, 11, epochs * iters) == reference


def test_chained_scheduler_loads_inner_states_by_position(ns):
    """No type check: a LinearLR's state goes into an ExponentialLR without an error."""
    state = ns["checkpoint_at"]("ChainedScheduler")["scheduler"]
    optimizer = ns["make_optimizer"]()
    swapped = sched.ChainedScheduler([sched.ExponentialLR(optimizer, gamma=0.9),
                                      sched.LinearLR(optimizer, start_factor=0.1, total_iters=5)])
    swapped.load_state_dict(state)
    assert isinstance(swapped._schedulers[0], sched.ExponentialLR)
    assert swapped._schedulers[0].start_factor == 0.1  # LinearLR's key, now on the other one


def test_loading_overwrites_the_peak_given_to_the_constructor(ns):
    """The page: a new max_lr or base given to the constructors is overwritten by loading."""
    checkpoint = ns["checkpoint_at"]("OneCycleLR")
    optimizer = ns["make_optimizer"]()
    scheduler = sched.OneCycleLR(optimizer, max_lr=0.05, total_steps=24)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    assert optimizer.param_groups[0]["max_lr"] == 0.1
    assert scheduler.base_lrs == checkpoint["scheduler"]["base_lrs"]


COMPOSITES = {
    "SequentialLR": lambda o: sched.SequentialLR(o, [
        sched.LinearLR(o, start_factor=0.1, total_iters=5),
        sched.CosineAnnealingLR(o, T_max=19)], milestones=[5]),
    "ChainedScheduler": lambda o: sched.ChainedScheduler([
        sched.ConstantLR(o, factor=0.5, total_iters=3),
        sched.ExponentialLR(o, gamma=0.9)]),
    "SequentialLR, three phases": lambda o: sched.SequentialLR(o, [
        sched.ConstantLR(o, factor=0.2, total_iters=4),
        sched.StepLR(o, step_size=3, gamma=0.5),
        sched.PolynomialLR(o, total_iters=10)], milestones=[4, 12]),
}


def _two_groups(lr):
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": lr / 10}], lr=lr)


def _lrs(optimizer, scheduler, steps):
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_set_composite_lr_matches_a_run_with_the_new_base(name, tmp_path):
    import checkpoint_files
    total, new = 24, [3e-2, 3e-3]
    reference = _two_groups(new[0])
    expected = _lrs(reference, COMPOSITES[name](reference), total)
    for stop in (1, 5, 13):
        first = _two_groups(0.1)
        scheduler = COMPOSITES[name](first)
        _lrs(first, scheduler, stop)
        torch.save({"o": first.state_dict(), "s": scheduler.state_dict()}, tmp_path / "c.pt")
        checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
        optimizer = _two_groups(0.1)
        scheduler = COMPOSITES[name](optimizer)
        optimizer.load_state_dict(checkpoint["o"])
        scheduler.load_state_dict(checkpoint["s"])
        checkpoint_files.set_composite_lr(optimizer, scheduler, lr=new)
        got = _lrs(optimizer, scheduler, total - stop)
        flat = lambda rows: [x for row in rows for x in row]  # noqa: E731
        assert flat(got) == pytest.approx(flat(expected[stop:]), rel=1e-12, abs=1e-15), stop


def test_set_composite_lr_refuses_what_does_not_scale():
    import checkpoint_files
    optimizer = _two_groups(0.1)
    scheduler = sched.SequentialLR(optimizer, [
        sched.LinearLR(optimizer, start_factor=0.1, total_iters=5),
        sched.CosineAnnealingLR(optimizer, T_max=19, eta_min=1e-4)], milestones=[5])
    with pytest.raises(TypeError, match="set_composite_lr: CosineAnnealingLR inside a "
                                        "SequentialLR does not scale"):
        checkpoint_files.set_composite_lr(optimizer, scheduler, lr=0.05)
    chained = sched.ChainedScheduler([sched.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1)])
    with pytest.raises(TypeError, match="CyclicLR inside a ChainedScheduler"):
        checkpoint_files.set_composite_lr(optimizer, chained, lr=0.05)
    scheduler = COMPOSITES["SequentialLR"](optimizer)
    with pytest.raises(ValueError, match="3 learning rates for 2 parameter groups"):
        checkpoint_files.set_composite_lr(optimizer, scheduler, lr=[1, 2, 3])


def test_lambda_lr_saves_no_function_of_any_kind():
    """A def function is saved as None like a lambda; a callable object as its __dict__."""
    def halve(step):
        return 0.5**step

    class Factor:
        def __init__(self):
            self.k = 3

        def __call__(self, step):
            return 1.0

    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    state = sched.LambdaLR(optimizer, [halve]).state_dict()
    assert state["lr_lambdas"] == [None]
    assert sched.LambdaLR(optimizer, [Factor()]).state_dict()["lr_lambdas"] == [{"k": 3}]


# --- set_hyperparameters and set_composite_lr with groups of their own lr and weight decay ---

FAMILIES = {
    "none": None,
    "StepLR": lambda o: sched.StepLR(o, step_size=3, gamma=0.5),
    "LambdaLR": lambda o: sched.LambdaLR(o, lambda s: min(1.0, (s + 1) / 5)),
    "CosineAnnealingLR": lambda o: sched.CosineAnnealingLR(o, T_max=20, eta_min=1e-6),
    "OneCycleLR": lambda o: sched.OneCycleLR(o, max_lr=[g["lr"] for g in o.param_groups],
                                             total_steps=24),
    "ReduceLROnPlateau": lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=0),
}


def _decay_groups(lr=1e-3, weight_decay=0.1):
    """The Trainer's layout: weights with decay, biases and norms without, at lr / 10."""
    w, b = torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(3))
    return torch.optim.AdamW([{"params": [w], "lr": lr, "weight_decay": weight_decay},
                              {"params": [b], "lr": lr / 10, "weight_decay": 0.0}])


def _run(optimizer, scheduler, steps, losses=iter(())):
    out = []
    for _ in range(steps):
        optimizer.step()
        if isinstance(scheduler, sched.ReduceLROnPlateau):
            scheduler.step(1.0)  # no improvement: it lowers the rate every step
        elif scheduler is not None:
            scheduler.step()
        out.append([(g["lr"], g["weight_decay"]) for g in optimizer.param_groups])
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_set_hyperparameters_per_group_matches_a_run_with_the_new_values(family):
    import checkpoint_files
    make = FAMILIES[family] or (lambda o: None)
    k, total = 7, 20
    reference = _decay_groups(lr=3e-4, weight_decay=0.05)
    expected = _run(reference, make(reference), total)

    first = _decay_groups()
    first_scheduler = make(first)
    _run(first, first_scheduler, k)
    resumed = _decay_groups()
    scheduler = make(resumed)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    if scheduler is not None:
        scheduler.load_state_dict(first_scheduler.state_dict())
    if family in ("none", "ReduceLROnPlateau"):  # the learning rate from now on
        lrs = [expected[k - 1][0][0], expected[k - 1][1][0]]
    else:
        lrs = [3e-4, 3e-5]
    checkpoint_files.set_hyperparameters(resumed, scheduler, lr=lrs, weight_decay=[0.05, 0.0])
    got = _run(resumed, scheduler, total - k)
    flat = lambda rows: [x for row in rows for pair in row for x in pair]  # noqa: E731
    assert flat(got) == pytest.approx(flat(expected[k:]), rel=1e-12, abs=1e-15)
    assert [g["weight_decay"] for g in resumed.param_groups] == [0.05, 0.0]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_set_hyperparameters_refuses_one_value_for_groups_that_differ(family):
    """One weight decay for decay and no-decay groups would make the biases decay; one
    learning rate for groups at lr and lr / 10 would multiply the second by 10."""
    import checkpoint_files
    optimizer = _decay_groups()
    scheduler = FAMILIES[family] and FAMILIES[family](optimizer)
    before = copy.deepcopy(optimizer.param_groups)
    with pytest.raises(ValueError, match=r"set_hyperparameters: one weight_decay \(0.05\) for 2 "
                                         r"parameter groups that have different ones "
                                         r"\(\[0.1, 0.0\]\); give a list") as info:
        checkpoint_files.set_hyperparameters(optimizer, scheduler, weight_decay=0.05)
    assert_quoted("recipes/safe-checkpoints.md", f"ValueError: {info.value}")
    with pytest.raises(ValueError, match=r"set_hyperparameters: one lr \(0.0003\) for 2 "
                                         r"parameter groups that have different ones"):
        checkpoint_files.set_hyperparameters(optimizer, scheduler, lr=3e-4)
    with pytest.raises(ValueError, match="3 weight decays for 2 parameter groups"):
        checkpoint_files.set_hyperparameters(optimizer, scheduler, weight_decay=[0.1, 0, 0])
    strip = lambda gs: [{k: v for k, v in g.items() if k != "params"} for g in gs]  # noqa: E731
    assert strip(optimizer.param_groups) == strip(before)  # nothing changed
    # groups with the same values take one value, as before
    same = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2)),
                              torch.nn.Parameter(torch.ones(2))], weight_decay=0.1)
    same = torch.optim.AdamW([{"params": [p]} for g in same.param_groups for p in g["params"]],
                             weight_decay=0.1)
    checkpoint_files.set_hyperparameters(same, weight_decay=0.2, lr=5e-4)
    assert [(g["lr"], g["weight_decay"]) for g in same.param_groups] == [(5e-4, 0.2)] * 2


def test_set_composite_lr_refuses_one_value_for_groups_that_differ():
    import checkpoint_files
    optimizer = _two_groups(0.1)
    scheduler = COMPOSITES["SequentialLR"](optimizer)
    with pytest.raises(ValueError, match=r"set_composite_lr: one lr \(0.05\) for 2 parameter "
                                         r"groups that have different ones \(\[0.1, 0.01\]\)"):
        checkpoint_files.set_composite_lr(optimizer, scheduler, lr=0.05)
    checkpoint_files.set_composite_lr(optimizer, scheduler, lr=[0.05, None])
    assert [g["initial_lr"] for g in optimizer.param_groups] == [0.05, 0.01]


def test_a_finished_cosine_at_eta_min_zero_trains_nothing():
    """After T_max steps of CosineAnnealingLR (eta_min=0) the learning rate is 0: Adam moves
    no weight at all."""
    p = torch.nn.Parameter(torch.ones(4))
    adam = torch.optim.Adam([p], lr=0.1)
    cosine = sched.CosineAnnealingLR(adam, T_max=10)
    for _ in range(10):
        p.grad = torch.randn(4)
        adam.step()
        cosine.step()
    assert adam.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-18)
    before = p.detach().clone()
    for _ in range(50):
        p.grad = torch.randn(4)
        adam.step()
    assert torch.equal(p.detach(), before)


def test_onecycle_ends_at_max_lr_over_div_factor_times_final_div_factor(ns):
    optimizer = ns["make_optimizer"]()
    scheduler = sched.OneCycleLR(optimizer, max_lr=1e-2, total_steps=30)
    for _ in range(29):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / (25 * 1e4))


def test_new_cycle_keeps_each_groups_peak():
    """new_cycle on an optimizer with two groups, after a finished OneCycleLR and after a
    finished cosine: each group's new peak is its own previous peak times peak_scale."""
    namespace: dict = {}
    exec(compile(section_source(SNIPPET, "families", "new_cycle"), str(SNIPPET), "exec"),
         namespace)
    new_cycle = namespace["new_cycle"]
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    for finished in ("onecycle", "cosine"):
        optimizer = torch.optim.AdamW([{"params": [a], "lr": 1e-2}, {"params": [b], "lr": 1e-3}])
        if finished == "onecycle":
            old = sched.OneCycleLR(optimizer, max_lr=[1e-2, 1e-3], total_steps=5)
            steps = 4
        else:
            old = sched.CosineAnnealingLR(optimizer, T_max=5)
            steps = 5
        for _ in range(steps):
            optimizer.step()
            old.step()
        state = optimizer.state_dict()
        resumed = torch.optim.AdamW([{"params": [a], "lr": 1e-2}, {"params": [b], "lr": 1e-3}])
        resumed.load_state_dict(state)
        scheduler = new_cycle(resumed, total_steps=20, peak_scale=0.5)
        peaks = [[], []]
        for _ in range(19):
            for i, group in enumerate(resumed.param_groups):
                peaks[i].append(group["lr"])
            resumed.step()
            scheduler.step()
        assert max(peaks[0]) == pytest.approx(5e-3), finished
        assert max(peaks[1]) == pytest.approx(5e-4), finished
        assert peaks[0][0] < max(peaks[0]) / 10  # it starts with a warm-up


# --- set_hyperparameters against an uninterrupted run, for every scheduler family ----------

def _library():
    import checkpoint_files  # set_hyperparameters is in the site's checkpoint library
    return checkpoint_files


SCHEDULES = {
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9 ** e),
    "MultiplicativeLR": lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.95),
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [4, 9, 15], gamma=0.3),
    "ConstantLR": lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.25, total_iters=8),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=12),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=25, power=2.0),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=9, eta_min=1e-5),
    "CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=4, T_mult=2, eta_min=2e-5),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=[g["lr"] for g in o.param_groups], total_steps=30),
}


def _lrs_after_step(optimizer, scheduler, steps):
    out = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        out.append([g["lr"] for g in optimizer.param_groups])
    return out


def _two_adamw_groups(lr):
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": lr / 10}], lr=lr)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_set_hyperparameters_matches_a_run_with_the_new_base(name):
    ns = vars(_library())
    new_lr, old_lr, k, total = 3e-4, 1e-3, 11, 30
    reference = _two_adamw_groups(new_lr)
    expected = _lrs_after_step(reference, SCHEDULES[name](reference), total)

    first = _two_adamw_groups(old_lr)
    first_scheduler = SCHEDULES[name](first)
    _lrs_after_step(first, first_scheduler, k)
    saved = {"optimizer": first.state_dict(), "scheduler": first_scheduler.state_dict()}

    resumed = _two_adamw_groups(old_lr)
    scheduler = SCHEDULES[name](resumed)
    resumed.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    ns["set_hyperparameters"](resumed, scheduler, lr=[new_lr, new_lr / 10], weight_decay=0.1)
    got = _lrs_after_step(resumed, scheduler, total - k)
    flat = lambda rows: [lr for row in rows for lr in row]  # noqa: E731
    assert flat(got) == pytest.approx(flat(expected[k:]), rel=1e-9, abs=1e-15), name
    assert all(g["weight_decay"] == 0.1 for g in resumed.param_groups)


def test_set_hyperparameters_with_reduce_on_plateau_and_without_scheduler():
    ns = vars(_library())
    optimizer = _two_adamw_groups(1e-3)
    ns["set_hyperparameters"](optimizer, lr=[5e-4, 5e-5])
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4, 5e-5]
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    ns["set_hyperparameters"](optimizer, plateau, lr=[2e-4, None])  # None: leave group 1
    assert [g["lr"] for g in optimizer.param_groups] == [2e-4, 5e-5]
    for loss in (1.0, 2.0):
        plateau.step(loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


@pytest.mark.parametrize("make", [
    lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
        torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
        torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20)], milestones=[5]),
    lambda o: torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
        torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)]),
    lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=1e-4, max_lr=1e-3, step_size_up=4),
], ids=["SequentialLR", "ChainedScheduler", "CyclicLR"])
def test_set_hyperparameters_refuses_what_it_cannot_do_right(make):
    ns = vars(_library())
    optimizer = _two_adamw_groups(1e-3)
    scheduler = make(optimizer)
    name = type(scheduler).__name__
    with pytest.raises(TypeError, match=f"cannot change the learning rate of a {name}; "
                                        f"build a new {name} with the new value"):
        ns["set_hyperparameters"](optimizer, scheduler, lr=3e-4)
    ns["set_hyperparameters"](optimizer, scheduler, weight_decay=0.2)  # that part still works
    assert all(g["weight_decay"] == 0.2 for g in optimizer.param_groups)

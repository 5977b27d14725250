"""Claims of docs/concepts/adam.md that are asserted here rather than on the page.

The hand-written updates are the page's own (snippets/concepts/adam.py, sections
`setup`, `adam_by_hand`, `proof_helpers`), run against more of torch's options.
"""

from __future__ import annotations

import pytest
import torch

from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "concepts" / "adam.py"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: extra threads only spin (10x slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ns():
    namespace = {"__name__": "adam_snippet"}
    code = section_source(SNIPPET, "setup", "adam_by_hand", "proof_helpers")
    exec(compile(code, str(SNIPPET), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("kwargs", [
    dict(amsgrad=True),
    dict(weight_decay=1e-2),  # Adam's coupled (L2) weight decay: g + lambda * theta
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
], ids=["amsgrad", "l2-weight-decay", "other-hyperparameters"])
def test_adam_formulas_match_torch(ns, kwargs):
    """The page's formulas for AMSGrad and coupled weight decay, bitwise in torch's order."""
    reference, optimizer = ns["with_torch"](torch.optim.Adam, **kwargs)
    ordered, state = ns["by_hand"](ns["adam_torch_order"], **kwargs)
    textbook, _ = ns["by_hand"](ns["adam_textbook"], **kwargs)
    assert ns["bitwise_equal"](ordered, reference)
    assert ns["max_diff"](textbook, reference) < 1e-6
    if kwargs.get("amsgrad"):
        for p, q in zip(ordered.parameters(), reference.parameters()):
            assert torch.equal(state[p]["v_max"], optimizer.state[q]["max_exp_avg_sq"])


@pytest.mark.parametrize("cls, kwargs", [
    (torch.optim.Adam, dict(lr=1e-3)),
    (torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-2, decoupled=True)),
], ids=["Adam", "AdamW"])
def test_fused_agrees_to_rounding_not_bitwise(ns, cls, kwargs):
    """fused=True (CPU here) computes the same update in its own order of operations."""
    torch_kwargs = {k: v for k, v in kwargs.items() if k != "decoupled"}
    fused, _ = ns["with_torch"](cls, fused=True, **torch_kwargs)
    for update in ("adam_torch_order", "adam_textbook"):
        by_hand, _ = ns["by_hand"](ns[update], **kwargs)
        assert not ns["bitwise_equal"](fused, by_hand), update
        assert ns["max_diff"](fused, by_hand) < 1e-6, update


def test_sgd_momentum_formula(ns):
    """b_1 = g_1, b_t = mu b_{t-1} + (1 - tau) g_t, theta_t = theta_{t-1} - lr b_t."""
    lr, mu, tau = 0.1, 0.9, 0.1
    reference, optimizer = ns["with_torch"](torch.optim.SGD, lr=lr, momentum=mu, dampening=tau)
    buffers = {}

    def sgd_momentum(params, grads):
        for p, g in zip(params, grads):
            if p not in buffers:
                buffers[p] = g.clone()
            else:
                buffers[p].mul_(mu).add_(g, alpha=1 - tau)
            p.add_(buffers[p], alpha=-lr)

    mine = ns["train"](sgd_momentum, ns["make_model"]())
    assert ns["bitwise_equal"](mine, reference)
    for p, q in zip(mine.parameters(), reference.parameters()):
        assert torch.equal(buffers[p], optimizer.state[q]["momentum_buffer"])
        assert set(optimizer.state[q]) == {"momentum_buffer"}  # no step counter


def test_plain_sgd_formula_and_no_state(ns):
    reference, optimizer = ns["with_torch"](torch.optim.SGD, lr=0.1)

    def sgd(params, grads):
        for p, g in zip(params, grads):
            p.add_(g, alpha=-0.1)

    assert ns["bitwise_equal"](ns["train"](sgd, ns["make_model"]()), reference)
    assert len(optimizer.state) == 0
    assert optimizer.state_dict()["state"] == {}


def test_adamw_is_adam_with_decoupled_weight_decay(ns):
    adamw, _ = ns["with_torch"](torch.optim.AdamW, lr=1e-3)
    adam, _ = ns["with_torch"](torch.optim.Adam, lr=1e-3, weight_decay=1e-2,
                               decoupled_weight_decay=True)
    assert ns["bitwise_equal"](adamw, adam)


@pytest.mark.cuda
def test_step_stays_on_cpu_unless_fused_or_capturable():
    """The table on the page: `step` is on the CPU, except with fused=True or capturable=True."""
    for kwargs, device_type in [({}, "cpu"), (dict(foreach=True), "cpu"),
                                (dict(fused=True), "cuda"), (dict(capturable=True), "cuda")]:
        p = torch.nn.Parameter(torch.randn(4, 3, device="cuda"))
        optimizer = torch.optim.Adam([p], lr=1e-3, **kwargs)
        p.grad = torch.randn_like(p)
        optimizer.step()
        step = optimizer.state[p]["step"]
        assert step.device.type == device_type, (kwargs, step.device)
        assert step.dtype == torch.float32


def test_schedulers_change_lr_in_param_groups():
    """The table on the page: the learning rate lives in param_groups, where schedulers set it."""
    p = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([p], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    p.grad = torch.ones(3)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 5e-4
    assert set(optimizer.state[p]) == {"step", "exp_avg", "exp_avg_sq"}


def test_step_has_the_default_dtype():
    """The table: `step` is float32 only because float32 is the default dtype."""
    old = torch.get_default_dtype()
    try:
        for dtype in (torch.float32, torch.float64):
            torch.set_default_dtype(dtype)
            p = torch.nn.Parameter(torch.zeros(3))
            optimizer = torch.optim.Adam([p])
            p.grad = torch.ones(3)
            optimizer.step()
            assert optimizer.state[p]["step"].dtype == dtype
    finally:
        torch.set_default_dtype(old)

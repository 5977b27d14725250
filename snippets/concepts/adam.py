# Concept: how Adam works, and what its state holds.
# Page: docs/concepts/adam.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model():
    """A small MLP classifier: 20 features in, 10 classes out (6 parameter tensors)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


# Synthetic data (no downloads): 100 batches of 32 examples with random labels.
g = torch.Generator().manual_seed(0)
batches = [(torch.randn(32, 20, generator=g), torch.randint(0, 10, (32,), generator=g))
           for _ in range(100)]


def compute_grads(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


def one_step(optimizer_class, **kwargs):
    """Build a model and an optimizer, take one step, return both."""
    model = make_model()
    optimizer = optimizer_class(model.parameters(), **kwargs)
    compute_grads(model, *batches[0])
    optimizer.step()
    return model, optimizer
# --8<-- [end:setup]

# --8<-- [start:momentum_buffer]
model, optimizer = one_step(torch.optim.SGD, lr=0.1, momentum=0.9)
for p in model.parameters():
    # First step: b_1 = g_1 (a copy of the gradient); no step counter is kept.
    assert torch.equal(optimizer.state[p]["momentum_buffer"], p.grad)
    assert "step" not in optimizer.state[p]
# --8<-- [end:momentum_buffer]

# --8<-- [start:bias_correction_indices]
beta1, t = 0.9, 1  # the first update: `step` is already 1 when the correction is computed

assert 1 - beta1**t == 0.09999999999999998  # consistent: m_1 / (1 - beta1^1), i.e. / 0.1
assert 1 - beta1 ** (t - 1) == 0            # the slip: m_1 / (1 - beta1^0) divides by zero
# --8<-- [end:bias_correction_indices]

# --8<-- [start:first_update]
lr, eps = 1e-3, 1e-8
model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=eps)
before = [p.detach().clone() for p in model.parameters()]
compute_grads(model, *batches[0])
optimizer.step()

n_sign = n_total = 0
for p, p0 in zip(model.parameters(), before):
    g, update = p.grad, p.detach() - p0
    # m_hat_1 = g and v_hat_1 = g^2, so the first update is -lr * g / (|g| + eps)
    # (to 1e-7: float32 rounding of weights up to ~0.2)
    assert torch.allclose(update, -lr * g / (g.abs() + eps), rtol=0, atol=1e-7)
    # ... which is -lr * sign(g), off by at most lr * eps / |g|: every weight moves by lr
    assert torch.all((update + lr * g.sign()).abs() <= lr * eps / g.abs() + 1e-7)
    n_sign += torch.isclose(update, -lr * g.sign(), rtol=1e-3, atol=0).sum().item()
    n_total += p.numel()
print(f"{n_sign} of {n_total} weights moved by lr * sign(g) to within 0.1%")
# --8<-- [end:first_update]

# --8<-- [start:state_keys]
model, optimizer = one_step(torch.optim.Adam, lr=1e-3, amsgrad=True)
p = model[0].weight
state = optimizer.state[p]
for key, value in state.items():
    print(f"{key:15} {str(value.dtype):14} {tuple(value.shape)} {value.device}")

assert state["step"].item() == 1.0  # counted before the update: the first update used t = 1
for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
    assert state[key].shape == p.shape and state[key].dtype == p.dtype
group = optimizer.param_groups[0]
assert (group["lr"], group["betas"], group["eps"], group["amsgrad"]) == (1e-3, (0.9, 0.999), 1e-8, True)
# --8<-- [end:state_keys]

# --8<-- [start:step_limit]
model, optimizer = one_step(torch.optim.Adam)
for state in optimizer.state.values():
    state["step"].fill_(2**24)  # as after 16,777,216 steps
compute_grads(model, *batches[1])
optimizer.step()
step = optimizer.state[model[0].weight]["step"]
print(f"step after one more step: {step.item():,.0f} ({step.dtype})")
assert step.item() == 2**24  # 2**24 + 1 is not a float32: the sum rounds back

beta1, beta2 = optimizer.param_groups[0]["betas"]
print("bias corrections at that step:", 1 - beta1 ** step.item(), 1 - beta2 ** step.item())
exact = next(t for t in range(1, 10**6) if 1 - beta2 ** t == 1.0)
assert exact < 50_000  # both corrections are exactly 1 from there on
print("both exactly 1 after fewer than 50,000 steps")
# --8<-- [end:step_limit]

# --8<-- [start:defaults]
for cls in (torch.optim.Adam, torch.optim.AdamW):
    d = cls(make_model().parameters()).defaults
    print(f"{cls.__name__:5} lr={d['lr']} betas={d['betas']} eps={d['eps']} "
          f"weight_decay={d['weight_decay']} decoupled_weight_decay={d['decoupled_weight_decay']}")

assert torch.optim.Adam(make_model().parameters()).defaults["weight_decay"] == 0
assert torch.optim.AdamW(make_model().parameters()).defaults["weight_decay"] == 1e-2
# --8<-- [end:defaults]

# --8<-- [start:which_have_state]
for name, cls, kwargs in [
    ("SGD", torch.optim.SGD, dict(lr=0.1)),
    ("SGD, momentum=0.9", torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("Adam", torch.optim.Adam, dict(lr=1e-3)),
    ("AdamW", torch.optim.AdamW, dict(lr=1e-3)),
]:
    model, optimizer = one_step(cls, **kwargs)
    # optimizer.state is a defaultdict: read it with .get(), or the lookup adds an empty entry.
    first = optimizer.state.get(model[0].weight, {})
    print(f"{name:18} {len(optimizer.state)} parameters with state, keys {sorted(first)}")

    if name == "SGD":
        assert len(optimizer.state) == 0  # nothing to save but the hyperparameters
    else:
        assert len(optimizer.state) == 6  # one entry per parameter tensor
# --8<-- [end:which_have_state]

# --8<-- [start:memory]
def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


print(f"{'':22} {'numbers':>8} {'bytes':>8}")
for name, cls, kwargs in [
    ("parameters", None, {}),
    ("SGD, momentum=0.9", torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("Adam", torch.optim.Adam, dict(lr=1e-3)),
    ("Adam, amsgrad=True", torch.optim.Adam, dict(lr=1e-3, amsgrad=True)),
]:
    if cls is None:
        params = list(make_model().parameters())
        n_params, tensors = sum(p.numel() for p in params), params
    else:
        model, optimizer = one_step(cls, **kwargs)
        tensors = [v for s in optimizer.state.values() for v in s.values()]
    print(f"{name:22} {sum(t.numel() for t in tensors):8,} {nbytes(tensors):8,}")

# Adam: two tensors the size of each parameter (exp_avg, exp_avg_sq) plus one `step` each.
model, optimizer = one_step(torch.optim.Adam, lr=1e-3)
tensors = [v for s in optimizer.state.values() for v in s.values()]
assert sum(t.numel() for t in tensors) == 2 * n_params + len(params)
assert nbytes(tensors) == 2 * nbytes(params) + 4 * len(params)  # `step` is one float32
# --8<-- [end:memory]

# --8<-- [start:adam_by_hand]
def adam_textbook(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                  weight_decay=0.0, decoupled=False, amsgrad=False):
    """One Adam (or AdamW) update, written from the formulas above."""
    beta1, beta2 = betas
    for p, g in zip(params, grads):
        if p not in state:
            state[p] = {"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p),
                        "v_max": torch.zeros_like(p)}
        s = state[p]
        s["t"] += 1  # t is incremented first: the first update uses t = 1
        t = s["t"]
        if decoupled:
            p.mul_(1 - lr * weight_decay)      # AdamW: decay the weights themselves
        elif weight_decay:
            g = g + weight_decay * p           # Adam: L2 term added to the gradient
        s["m"] = beta1 * s["m"] + (1 - beta1) * g
        s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
        if amsgrad:
            s["v_max"] = torch.maximum(s["v_max"], s["v"])
        m_hat = s["m"] / (1 - beta1**t)
        v_hat = (s["v_max"] if amsgrad else s["v"]) / (1 - beta2**t)
        p -= lr * m_hat / (v_hat.sqrt() + eps)


def adam_torch_order(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                     weight_decay=0.0, decoupled=False, amsgrad=False):
    """The same formulas, with the operations in the order torch's Adam performs them."""
    beta1, beta2 = betas
    for p, g in zip(params, grads):
        if p not in state:
            state[p] = {"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p),
                        "v_max": torch.zeros_like(p)}
        s = state[p]
        s["t"] += 1
        t = s["t"]
        if decoupled:
            p.mul_(1 - lr * weight_decay)
        elif weight_decay:
            g = g.add(p, alpha=weight_decay)
        s["m"].lerp_(g, 1 - beta1)                           # m + (1 - beta1) * (g - m)
        s["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if amsgrad:
            torch.maximum(s["v_max"], s["v"], out=s["v_max"])
        v = s["v_max"] if amsgrad else s["v"]
        denom = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)  # sqrt(v_hat) + eps
        p.addcdiv_(s["m"], denom, value=-lr / (1 - beta1**t))
# --8<-- [end:adam_by_hand]

# --8<-- [start:proof_helpers]
def train(step_fn, model, steps=100):
    """100 steps on the synthetic batches; step_fn(params, grads) updates the model."""
    for x, y in batches[:steps]:
        compute_grads(model, x, y)
        with torch.no_grad():
            step_fn(list(model.parameters()), [p.grad for p in model.parameters()])
    return model


def with_torch(cls, **kwargs):
    model = make_model()
    optimizer = cls(model.parameters(), **kwargs)
    return train(lambda params, grads: optimizer.step(), model), optimizer


def by_hand(update, **kwargs):
    state = {}
    return train(lambda params, grads: update(params, grads, state, **kwargs), make_model()), state


def max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def bitwise_equal(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
# --8<-- [end:proof_helpers]

# --8<-- [start:proof]
cases = {
    "Adam": (torch.optim.Adam, dict(lr=1e-3), dict(lr=1e-3)),
    "AdamW": (torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-2),
              dict(lr=1e-3, weight_decay=1e-2, decoupled=True)),
}
for name, (cls, torch_kwargs, hand_kwargs) in cases.items():
    textbook, _ = by_hand(adam_textbook, **hand_kwargs)
    ordered, state = by_hand(adam_torch_order, **hand_kwargs)
    for foreach in (False, True):  # torch's for-loop and multi-tensor (foreach) code paths
        reference, optimizer = with_torch(cls, foreach=foreach, **torch_kwargs)

        assert bitwise_equal(ordered, reference)
        for p, q in zip(ordered.parameters(), reference.parameters()):  # the state too
            mine, theirs = state[p], optimizer.state[q]
            assert torch.equal(mine["m"], theirs["exp_avg"])
            assert torch.equal(mine["v"], theirs["exp_avg_sq"])
            assert mine["t"] == theirs["step"].item() == 100

        assert not bitwise_equal(textbook, reference)
        assert max_diff(textbook, reference) < 1e-6  # rounding only, on weights of size ~0.1
        # The size of the rounding difference depends on the CPU's kernels; the bound does not.
        print(f"{name:5} foreach={foreach!s:5}  torch order: bitwise equal;"
              f"  textbook: not bitwise equal, max |diff| < 1e-6")
# --8<-- [end:proof]

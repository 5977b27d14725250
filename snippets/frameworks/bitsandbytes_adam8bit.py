# Recipe: bitsandbytes' AdamW8bit: its state, saving and loading it, moving to torch.optim.AdamW and
# back, and what makes the loss jump after a resume.
# Page: docs/frameworks/bitsandbytes.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:setup]
import io
import warnings

import bitsandbytes as bnb
import bitsandbytes.functional as bnbF
import torch
import torch.nn as nn
import torch.nn.functional as F

g = torch.Generator().manual_seed(0)
features = torch.randn(256, 32, generator=g)
targets = features @ torch.randn(32, 1, generator=g)
SAVE_AT, END = 80, 100  # steps: the checkpoint, the end of the run


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 1))


def param_groups(model):
    """Two groups with their own hyperparameters: weights with weight decay, biases without."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 0.01},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0}]


def make_adamw8bit(model, **kwargs):
    return bnb.optim.AdamW8bit(param_groups(model), lr=1e-2, **kwargs)


def train(model, optimizer, steps):
    """One batch of 32 per step, 8 batches per epoch, in order. Returns the losses."""
    losses = []
    for step in steps:
        i = step % 8 * 32
        loss = F.mse_loss(model(features[i:i + 32]), targets[i:i + 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def names(model):
    return {p: n for n, p in model.named_parameters()}
# --8<-- [end:setup]


# --8<-- [start:state]
model = build_model()
optimizer = make_adamw8bit(model)  # min_8bit_size=4096 by default
train(model, optimizer, range(SAVE_AT))
for p, name in names(model).items():
    state = optimizer.state[p]
    shown = ", ".join(f"{k} {v.dtype} {tuple(v.shape)}" if torch.is_tensor(v) else f"{k}={v}"
                      for k, v in state.items())
    print(f"{name} ({p.numel()} values): {shown}")
# --8<-- [end:state]


# --8<-- [start:rule]
for group_index, group in enumerate(optimizer.param_groups):
    for param_index, p in enumerate(group["params"]):
        config = optimizer.get_config(group_index, param_index, group)
        eight_bit = config["optim_bits"] == 8 and p.numel() >= config["min_8bit_size"]
        assert eight_bit == (optimizer.state[p]["state1"].dtype == torch.uint8)
        if eight_bit:  # one float32 absmax per block of 256 values
            assert optimizer.state[p]["absmax1"].numel() == -(-p.numel() // 256)
print("8-bit exactly where numel >= min_8bit_size; one absmax per 256 values")
# --8<-- [end:rule]


# --8<-- [start:save]
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "ckpt.pt")
saved = optimizer.state_dict()["state"]
print("state_dict()['state'][0]:", sorted(saved[0]))
print("  nested:", sorted(saved[0]["__bnb_optimizer_quant_state__"]))
print("state_dict()['state'][1]:", sorted(saved[1]), "->",
      sorted(saved[1]["__bnb_optimizer_quant_state__"]))
# --8<-- [end:save]


# --8<-- [start:load]
train(model, optimizer, range(SAVE_AT, END))  # the run goes on to the end: it never stopped

checkpoint = torch.load("ckpt.pt", weights_only=True)  # plain tensors, ints and dicts
resumed_model = build_model()
resumed_model.load_state_dict(checkpoint["model"])
resumed = make_adamw8bit(resumed_model)  # the same groups, in the same order
resumed.load_state_dict(checkpoint["optimizer"])
resumed_losses = train(resumed_model, resumed, range(SAVE_AT, END))
print("bitwise equal:", all(torch.equal(a, b) for a, b in
                            zip(resumed_model.parameters(), model.parameters())))
# --8<-- [end:load]


# --8<-- [start:to_torch]
def adam_moments(state):
    """(exp_avg, exp_avg_sq) in float32 from one parameter's AdamW8bit state, 8-bit or 32-bit."""
    if state["state1"].dtype != torch.uint8:
        return state["state1"].clone(), state["state2"].clone()
    return (bnbF.dequantize_blockwise(state["state1"], absmax=state["absmax1"],
                                      code=state["qmap1"], blocksize=256),
            bnbF.dequantize_blockwise(state["state2"], absmax=state["absmax2"],
                                      code=state["qmap2"], blocksize=256))


def _check_pair(source, target):
    if len(source.param_groups) != len(target.param_groups) or any(
            len(a["params"]) != len(b["params"]) or any(p is not q for p, q in zip(a["params"], b["params"]))
            for a, b in zip(source.param_groups, target.param_groups)):
        raise ValueError("the two optimizers must hold the same parameters in the same groups and "
                         "order: build the second one from the same param_groups(model)")
    for group in source.param_groups + target.param_groups:
        if len(group["betas"]) != 2 or group.get("alpha", 0.0) or group.get("amsgrad"):
            raise ValueError("only Adam(W) with two betas converts (not AdEMAMix, not amsgrad)")


def to_torch_adamw(source, target):
    """Copy an AdamW8bit's hyperparameters and state into a torch.optim.AdamW (same groups)."""
    if not isinstance(target, torch.optim.AdamW):
        raise TypeError(f"target must be torch.optim.AdamW, not {type(target).__name__}: "
                        "AdamW8bit's weight decay is AdamW's (decoupled)")
    _check_pair(source, target)
    for g8, g32 in zip(source.param_groups, target.param_groups):
        for key in ("lr", "betas", "eps", "weight_decay"):
            g32[key] = g8[key]
        for p in g8["params"]:
            if source.state[p]:
                exp_avg, exp_avg_sq = adam_moments(source.state[p])
                target.state[p] = {"step": torch.tensor(float(source.state[p]["step"])),
                                   "exp_avg": exp_avg.reshape(p.shape),
                                   "exp_avg_sq": exp_avg_sq.reshape(p.shape)}
# --8<-- [end:to_torch]


# --8<-- [start:to_torch_run]
model32 = build_model()
model32.load_state_dict(checkpoint["model"])
adamw = torch.optim.AdamW(param_groups(model32))
eight = make_adamw8bit(model32)
eight.load_state_dict(checkpoint["optimizer"])
to_torch_adamw(eight, adamw)
first = adamw.state[model32[0].weight]
print("torch AdamW state:", sorted(first), first["exp_avg"].dtype, tuple(first["exp_avg"].shape),
      "step =", int(first["step"]))
print("groups:", [(len(g["params"]), g["weight_decay"]) for g in adamw.param_groups])
# --8<-- [end:to_torch_run]


# --8<-- [start:continue32]
losses32 = train(model32, adamw, range(SAVE_AT, END))
print("steps 81-100 in torch AdamW: loss within 1% of the AdamW8bit run's at every step:",
      all(abs(a - b) < 0.01 * b for a, b in zip(losses32, resumed_losses)))
# --8<-- [end:continue32]


# --8<-- [start:to_8bit]
def to_adamw8bit(source, target):
    """Quantize a torch.optim.AdamW's state into an AdamW8bit (same groups), choosing 8-bit or
    32-bit per parameter as the AdamW8bit would (optim_bits, min_8bit_size)."""
    if not isinstance(source, torch.optim.AdamW):
        raise TypeError(f"source must be torch.optim.AdamW, not {type(source).__name__}")
    _check_pair(source, target)
    if "dynamic" not in target.name2qmap:
        target.fill_qmap()
    signed, unsigned = target.name2qmap["dynamic"], target.name2qmap["udynamic"]
    for gi, (g32, g8) in enumerate(zip(source.param_groups, target.param_groups)):
        for key in ("lr", "betas", "eps", "weight_decay"):
            g8[key] = g32[key]
        for pi, p in enumerate(g32["params"]):
            state = source.state[p]
            if not state:
                continue
            config = target.get_config(gi, pi, g8)
            new = {"step": int(state["step"])}
            if config["optim_bits"] == 8 and p.numel() >= config["min_8bit_size"]:
                new["state1"], q1 = bnbF.quantize_blockwise(state["exp_avg"], code=signed, blocksize=256)
                new["state2"], q2 = bnbF.quantize_blockwise(state["exp_avg_sq"], code=unsigned,
                                                            blocksize=256)
                new.update(qmap1=signed, qmap2=unsigned, absmax1=q1.absmax, absmax2=q2.absmax)
            else:
                new["state1"] = state["exp_avg"].clone()
                new["state2"] = state["exp_avg_sq"].clone()
            target.state[p] = new


def worst_error(moment, quantized, absmax, code):
    """max over blocks of |moment - dequantized| / the block's absmax (blocks of 256 values)."""
    restored = bnbF.dequantize_blockwise(quantized, absmax=absmax, code=code, blocksize=256)
    error = (restored - moment).abs().flatten()
    blocks = torch.nn.functional.pad(error, (0, -error.numel() % 256)).view(-1, 256).amax(dim=1)
    return (blocks / absmax).max().item()
# --8<-- [end:to_8bit]


# --8<-- [start:to_8bit_run]
back = make_adamw8bit(model32)
to_adamw8bit(adamw, back)
print("back in AdamW8bit:", {names(model32)[p]: str(back.state[p]["state1"].dtype)
                             for p in model32.parameters()})
# --8<-- [end:to_8bit_run]


# --8<-- [start:round_trip]
w = model32[0].weight
errors = {"exp_avg": worst_error(adamw.state[w]["exp_avg"], back.state[w]["state1"],
                                 back.state[w]["absmax1"], back.state[w]["qmap1"]),
          "exp_avg_sq": worst_error(adamw.state[w]["exp_avg_sq"], back.state[w]["state2"],
                                    back.state[w]["absmax2"], back.state[w]["qmap2"])}
for name in errors:
    print(f"{name}: |error| < 1% of its block's absmax:", errors[name] < 0.01)
small = [p for p in model32.parameters() if back.state[p]["state1"].dtype == torch.float32]
print("32-bit parameters copied exactly:", all(
    torch.equal(back.state[p]["state1"], adamw.state[p]["exp_avg"]) for p in small))
# --8<-- [end:round_trip]


# --8<-- [start:jump]
def first_updates(optimizer_state):
    """Resume at SAVE_AT with this optimizer state (None: a fresh AdamW8bit); the change of the
    weights in the first step, and the loss of the first 3 steps."""
    m = build_model()
    m.load_state_dict(checkpoint["model"])
    opt = make_adamw8bit(m)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
    train(m, opt, [SAVE_AT])
    after = torch.cat([p.detach().flatten() for p in m.parameters()])
    return (after - before).norm().item(), train(m, opt, range(SAVE_AT + 1, SAVE_AT + 3))


loaded_update, loaded_losses = first_updates(checkpoint["optimizer"])
fresh_update, fresh_losses = first_updates(None)
print("first update, fresh state / loaded state > 10:", fresh_update / loaded_update > 10)
print("loss at the next step, fresh / loaded > 10:", fresh_losses[0] / loaded_losses[0] > 10)
# --8<-- [end:jump]


# --8<-- [start:min_8bit_size]
m = build_model()
m.load_state_dict(checkpoint["model"])
changed = make_adamw8bit(m, min_8bit_size=64)  # fresh, it would make 3 of 4 parameters 8-bit
changed.load_state_dict(checkpoint["optimizer"])
train(m, changed, [SAVE_AT])
print("after loading with min_8bit_size=64:", [str(changed.state[p]["state1"].dtype)
                                                for p in m.parameters()])
# --8<-- [end:min_8bit_size]


# --8<-- [start:paged]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    m = build_model()
    paged = bnb.optim.PagedAdamW8bit(param_groups(m), lr=1e-2)
    train(m, paged, range(5))
print(str(caught[0].message))
m8 = build_model()
eight = make_adamw8bit(m8)
train(m8, eight, range(5))
print("same state as AdamW8bit:", all(
    torch.equal(paged.state[p]["state1"], eight.state[q]["state1"])
    for p, q in zip(m.parameters(), m8.parameters())))
# --8<-- [end:paged]

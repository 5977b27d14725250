"""bitsandbytes' AdamW8bit (docs/frameworks/bitsandbytes.md): what the page says that its blocks
do not show. The tests share the xdist group of the page, so that bitsandbytes is imported once."""

from __future__ import annotations

import inspect

import pytest
import torch

from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source

BNB = pytest.mark.xdist_group("frameworks_bitsandbytes_md")
PAGE = "frameworks/bitsandbytes.md"


@pytest.fixture(scope="module")
def ns():
    pytest.importorskip("bitsandbytes")
    namespace = {"__name__": "frameworks_bitsandbytes"}
    path = SNIPPETS / "frameworks" / "bitsandbytes_adam8bit.py"
    source = section_source(path, "setup", "to_torch", "to_8bit")
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


def trained(ns, steps=20):
    model = ns["build_model"]()
    optimizer = ns["make_adamw8bit"](model)
    ns["train"](model, optimizer, range(steps))
    return model, optimizer


def step_once(ns, model, optimizer):
    ns["train"](model, optimizer, [0])


@BNB
def test_loading_the_other_optimizers_state_fails_at_the_first_step(ns):
    model, eight = trained(ns)
    adamw = torch.optim.AdamW(ns["param_groups"](model))
    ns["train"](model, adamw, [0])
    into_torch = torch.optim.AdamW(ns["param_groups"](model))
    into_torch.load_state_dict(eight.state_dict())  # loads silently
    with pytest.raises(KeyError) as error:
        step_once(ns, model, into_torch)
    assert f"KeyError: {error.value}" == "KeyError: 'exp_avg'"
    into_eight = ns["make_adamw8bit"](model)
    into_eight.load_state_dict(adamw.state_dict())
    with pytest.raises(KeyError) as error:
        step_once(ns, model, into_eight)
    assert f"KeyError: {error.value}" == "KeyError: 'state1'"
    assert_quoted(PAGE, "KeyError: 'exp_avg'", "KeyError: 'state1'")


@BNB
def test_converters_refuse_other_optimizers_with_a_clear_error(ns):
    model, eight = trained(ns)
    with pytest.raises(TypeError, match="must be torch.optim.AdamW"):
        ns["to_torch_adamw"](eight, torch.optim.Adam(ns["param_groups"](model)))
    with pytest.raises(ValueError, match="same parameters in the same groups"):
        ns["to_torch_adamw"](eight, torch.optim.AdamW(model.parameters()))  # one group
    swapped = ns["param_groups"](model)[::-1]
    with pytest.raises(ValueError, match="same parameters in the same groups"):
        ns["to_torch_adamw"](eight, torch.optim.AdamW(swapped))
    with pytest.raises(ValueError, match="amsgrad"):
        ns["to_torch_adamw"](eight, torch.optim.AdamW(ns["param_groups"](model), amsgrad=True))
    with pytest.raises(TypeError, match="source must be torch.optim.AdamW"):
        ns["to_adamw8bit"](eight, ns["make_adamw8bit"](model))


@BNB
def test_round_trip_8bit_to_32bit_to_8bit_is_within_the_bound(ns):
    model, eight = trained(ns)
    adamw = torch.optim.AdamW(ns["param_groups"](model))
    ns["to_torch_adamw"](eight, adamw)
    back = ns["make_adamw8bit"](model)
    ns["to_adamw8bit"](adamw, back)
    checked = 0
    for p in model.parameters():
        before, after = eight.state[p], back.state[p]
        assert after["step"] == before["step"] and after["state1"].dtype == before["state1"].dtype
        if before["state1"].dtype != torch.uint8:
            assert torch.equal(after["state1"], before["state1"])
            continue
        for i, key in ((1, "state1"), (2, "state2")):
            original = ns["adam_moments"](before)[i - 1]
            error = ns["worst_error"](original, after[key], after[f"absmax{i}"], after[f"qmap{i}"])
            assert error < 0.01
            checked += 1
    assert checked == 2
    # 8-bit -> 32-bit gives the moments the 8-bit state stands for: quantizing them again with
    # the same scales gives the same codes.
    w = model[0].weight
    exp_avg_sq = ns["adam_moments"](eight.state[w])[1]
    import bitsandbytes.functional as bnbF
    codes, _ = bnbF.quantize_blockwise(exp_avg_sq, code=eight.state[w]["qmap2"],
                                       absmax=eight.state[w]["absmax2"], blocksize=256)
    assert torch.equal(codes, eight.state[w]["state2"])


@BNB
def test_block_size_is_fixed_at_256(ns):
    import bitsandbytes as bnb

    assert "blocksize" not in inspect.signature(bnb.optim.AdamW8bit).parameters
    model = torch.nn.Linear(1000, 3)  # 3003 weights: 12 blocks, the last one partial
    optimizer = bnb.optim.AdamW8bit(model.parameters(), min_8bit_size=1)
    model(torch.ones(2, 1000)).sum().backward()
    optimizer.step()
    assert optimizer.state[model.weight]["absmax1"].numel() == 12


@BNB
def test_a_fresh_state_after_the_conversion_would_jump(ns):
    """The converted state continues the run; a fresh AdamW8bit at the same point does not."""
    model, eight = trained(ns, 80)
    adamw = torch.optim.AdamW(ns["param_groups"](model))
    ns["to_torch_adamw"](eight, adamw)
    back = ns["make_adamw8bit"](model)
    ns["to_adamw8bit"](adamw, back)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    converted = ns["train"](model, back, [80, 81])
    model.load_state_dict(state)
    fresh = ns["train"](model, ns["make_adamw8bit"](model), [80, 81])
    assert fresh[1] > 10 * converted[1]

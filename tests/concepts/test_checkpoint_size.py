"""Claims of docs/concepts/checkpoint-size.md that its blocks do not assert themselves.

The page prints exact byte counts (its blocks, snippets/concepts/checkpoint_size.py, are
checked against their outputs by test_pages); these tests check the ratios the page draws
from them, and the sentences around them.
"""

from __future__ import annotations

import os
import re

import pytest
import torch
import torch.nn as nn

from cookbook_testing.pages import ROOT, assert_quoted

PAGE = "concepts/checkpoint-size.md"


def printed_sizes(section):
    """{label: bytes} from what the page's block printed (the page tests check the output
    against a run), e.g. 'model only:  539,285 bytes (...)' -> {'model only': 539285}."""
    text = (ROOT / "outputs" / "concepts" / "checkpoint-size" / f"{section}.txt").read_text()
    found = re.findall(r"^(.+?):?\s+([\d,]+) bytes", text, flags=re.M)
    return {label.strip(): int(number.replace(",", "")) for label, number in found}


def test_bytes_per_parameter_ratios():
    setup, sizes = printed_sizes("setup"), printed_sizes("mixed_precision")
    text = (ROOT / "outputs" / "concepts" / "checkpoint-size" / "setup.txt").read_text()
    n = int(re.search(r"parameters: ([\d,]+)", text)[1].replace(",", ""))
    weights, full = setup["model only"], setup["model + Adam"]
    assert 2.9 < full / weights < 3.1  # Adam: three times the weights
    per_param = {k: v / n for k, v in sizes.items()}
    assert 2.0 <= per_param["bf16 weights only"] < 2.1
    assert 14.0 <= per_param["bf16 + fp32 master + Adam"] < 14.1
    assert 16.0 <= per_param["fp32 + Adam + EMA"] < 16.1
    # bigger than the fp32 checkpoint, seven times the bf16 weights
    assert sizes["bf16 + fp32 master + Adam"] > full
    assert 6.9 < sizes["bf16 + fp32 master + Adam"] / sizes["bf16 weights only"] < 7.1
    # "a few hundred bytes of structure per tensor"
    tensors = 2 * 3 * 3  # 6 parameters: weight, exp_avg, exp_avg_sq; plus 6 steps of 1 value
    overhead = (full - 12 * n - 6 * 4) / (tensors + 6)
    assert 100 < overhead < 1000


def test_bf16_weights_do_not_give_the_fp32_values_back():
    w = torch.randn(1000)
    assert not torch.equal(w.to(torch.bfloat16).float(), w)


def test_autocast_keeps_fp32_weights():
    model = nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and model.weight.dtype == torch.float32


def test_file_size_depends_on_its_name(tmp_path):
    state = {"w": torch.zeros(1000)}
    torch.save(state, tmp_path / "a.pt")
    torch.save(state, tmp_path / "checkpoint-epoch-0042.pt")
    short, long = (os.path.getsize(tmp_path / "a.pt"),
                   os.path.getsize(tmp_path / "checkpoint-epoch-0042.pt"))
    assert short != long and abs(short - long) < 1000


def test_views_save_the_whole_storage_and_a_storage_once():
    import io

    def size(obj):
        b = io.BytesIO()
        torch.save(obj, b)
        return b.getbuffer().nbytes

    big = torch.zeros(1000, 1000)
    assert size(big[0]) > 0.99 * size(big)
    assert size(big[0].clone()) < size(big) / 100
    assert size(list(big.chunk(4))) < 1.01 * size(big)  # four views, one storage
    # tied weights in a state_dict: one storage, written once
    emb = nn.Embedding(1000, 64)
    head = nn.Linear(64, 1000, bias=False)
    head.weight = emb.weight
    tied = {"e": emb.weight, "h": head.weight}
    assert size(tied) < 1.01 * size({"e": emb.weight})


def test_safetensors_messages_and_the_restored_tie(tmp_path):
    from safetensors.torch import load_model, save_file, save_model
    big = torch.zeros(10, 10)
    with pytest.raises(ValueError) as info:
        save_file({"column": big[:, 0]}, str(tmp_path / "c.safetensors"))
    assert_quoted(PAGE, f"ValueError: {info.value}")

    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.embed.weight

    with pytest.raises(RuntimeError) as info:
        save_file(TiedLM().state_dict(), str(tmp_path / "t.safetensors"))
    # The names come as a set: their order varies from run to run.
    text = str(info.value)
    for order in ("{'embed.weight', 'head.weight'}", "{'head.weight', 'embed.weight'}"):
        text = text.replace(order, "{'embed.weight', 'head.weight'}")
    assert_quoted(PAGE, f"RuntimeError: {text}")
    lm = TiedLM()
    save_model(lm, str(tmp_path / "lm.safetensors"))
    lm2 = TiedLM()  # its constructor ties the weights; load_model accepts the missing name
    missing, unexpected = load_model(lm2, str(tmp_path / "lm.safetensors"))
    assert not missing and not unexpected
    assert torch.equal(lm2.head.weight, lm.embed.weight)
    assert lm2.head.weight.data_ptr() == lm2.embed.weight.data_ptr()


def test_a_save_in_progress_sits_beside_keep_complete_files(tmp_path):
    from checkpoint_files import TMP_PREFIX, save_checkpoint
    for step in (1, 2):
        save_checkpoint({"w": torch.ones(10)}, str(tmp_path), step, keep=2)
    seen = []

    class Peek:
        def __reduce__(self):
            seen.append(sorted(os.listdir(tmp_path)))
            return (int, (0,))

    save_checkpoint({"w": torch.ones(10), "peek": Peek()}, str(tmp_path), 3, keep=2)
    during = seen[0]
    assert len([n for n in during if n.startswith(TMP_PREFIX)]) == 1
    assert len([n for n in during if n.endswith(".pt") and not n.startswith(TMP_PREFIX)]) == 2
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".pt")) == [
        "ckpt-00000002.pt", "ckpt-00000003.pt"]

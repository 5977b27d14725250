"""Rows of docs/troubleshooting/cross-device.md that its page blocks cannot check on every machine."""

from __future__ import annotations


import pytest
import torch

from cookbook_testing.checkpoints import saved_as_if_on
from cookbook_testing.devices import cuda_available
from cookbook_testing.pages import SNIPPETS, section_source

SNIPPET = SNIPPETS / "troubleshooting" / "cross_device.py"


def section(name: str) -> str:
    return section_source(SNIPPET, name)


@pytest.fixture
def page(tmp_path, monkeypatch):
    """The namespace of the page after its setup block, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(section("setup"), namespace)
    return namespace


def tagging_cuda(fused):
    """While active, torch.save tags storages as a GPU run would: all of them for fused Adam,
    all but the one-element `step` storages (kept on the CPU) otherwise."""
    def tag(storage):
        if storage.device.type == "cpu" and (fused or storage.nbytes() > 4):
            return "cuda:0"
        return None
    return tag


@pytest.mark.skipif(cuda_available(), reason="with CUDA present a CUDA-tagged file loads")
@pytest.mark.parametrize("fused", [False, True])
def test_gpu_checkpoint_resumed_on_a_machine_without_cuda(page, fused):
    with saved_as_if_on(tagging_cuda(fused)):
        page["save"]("cpu", fused, "gpu.pt")
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        torch.load("gpu.pt", weights_only=True)
    model, optimizer = page["resume"]("gpu.pt", "cpu", fused)
    assert page["where"](optimizer) == {"exp_avg": "cpu", "exp_avg_sq": "cpu", "step": "cpu"}


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_gpu0_to_gpu1(page, capsys):
    exec(section("gpu0_to_gpu1"), page)
    assert capsys.readouterr().out.split("\n")[:2] == [
        "fused=False {'exp_avg': 'cuda:1', 'exp_avg_sq': 'cuda:1', 'step': 'cpu'}",
        "fused=True  {'exp_avg': 'cuda:1', 'exp_avg_sq': 'cuda:1', 'step': 'cuda:1'}",
    ]

"""Claims of docs/troubleshooting/errors.md that its blocks do not assert themselves.

The quoted messages that no CPU block can produce are triggered here and looked up, verbatim,
in both languages. The CUDA ones run in `make test-gpu`.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.serialization as serialization

from cookbook_testing.checkpoints import tagged_checkpoint, trained_adam
from cookbook_testing.devices import cuda_available
from cookbook_testing.pages import assert_quoted as quoted


def assert_quoted(message: str):
    """`message` (as a terminal shows it) appears verbatim in the English and Japanese page."""
    quoted("troubleshooting/errors.md", message)


def _step(model, optimizer):
    p = next(model.parameters())
    optimizer.zero_grad()
    model(torch.randn(8, 4).to(p)).sum().backward()
    optimizer.step()


@pytest.mark.skipif(cuda_available(), reason="with CUDA present a CUDA-tagged file loads")
def test_cuda_checkpoint_on_cpu_message(tmp_path):
    tagged_checkpoint(tmp_path / "gpu.pt", "cuda:0")
    with pytest.raises(RuntimeError) as info:
        torch.load(tmp_path / "gpu.pt", weights_only=True)
    assert_quoted(f"RuntimeError: {info.value}")
    quoted("recipes/save-and-resume.md", f"RuntimeError: {info.value}")  # quoted there too
    loaded = torch.load(tmp_path / "gpu.pt", map_location="cpu", weights_only=True)
    assert loaded["w"].device.type == "cpu"


@pytest.mark.cuda
def test_cuda_device_count_message(tmp_path):
    """The page quotes a one-GPU machine; on n GPUs the file asks for cuda:n."""
    n = torch.cuda.device_count()
    tagged_checkpoint(tmp_path / "gpu.pt", f"cuda:{n}")
    with pytest.raises(RuntimeError) as info:
        torch.load(tmp_path / "gpu.pt", weights_only=True)
    message = str(info.value).replace(f"device {n} but", "device 1 but").replace(
        f"device_count() is {n}.", "device_count() is 1.")
    assert_quoted(f"RuntimeError: {message}")
    loaded = torch.load(tmp_path / "gpu.pt", map_location={f"cuda:{n}": "cuda:0"}, weights_only=True)
    assert loaded["w"].device == torch.device("cuda:0")


@pytest.mark.cuda
@pytest.mark.parametrize("adam", [{}, {"foreach": False}, {"foreach": True}, {"fused": True}],
                         ids=["default", "for-loop", "foreach", "fused"])
def test_device_mismatch_message_and_repair(adam):
    """Loaded on the CPU, moved to the GPU afterwards: the quoted error, then the repair."""
    _, saved = trained_adam(**adam)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **adam)
    optimizer.load_state_dict(saved.state_dict())
    model.to("cuda")
    with pytest.raises(RuntimeError) as info:
        _step(model, optimizer)
    assert_quoted(f"RuntimeError: {info.value}")

    optimizer.load_state_dict(optimizer.state_dict())
    _step(model, optimizer)
    for p in model.parameters():
        assert optimizer.state[p]["exp_avg"].device == p.device
        expected = p.device if adam.get("fused") else torch.device("cpu")
        assert optimizer.state[p]["step"].device == expected


def test_weights_only_message_and_remedies(tmp_path):
    path = tmp_path / "numpy_rng.pt"
    torch.save({"numpy_rng": np.random.get_state()}, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(path, weights_only=True)
    assert_quoted(f"_pickle.UnpicklingError: {info.value}")
    # weights_only=False loads it (plain unpickling)
    assert torch.load(path, weights_only=False)["numpy_rng"][0] == "MT19937"
    # add_safe_globals allows them for the whole process
    from numpy._core.multiarray import _reconstruct
    before = serialization.get_safe_globals()
    try:
        serialization.add_safe_globals([_reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType])
        torch.load(path, weights_only=True)
    finally:
        serialization.clear_safe_globals()
        serialization.add_safe_globals(before)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_load_state_dict_takes_every_hyperparameter_from_the_checkpoint():
    model, optimizer = trained_adam()
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=4)
    saved, saved_sched = optimizer.state_dict(), scheduler.state_dict()
    optimizer2 = torch.optim.Adam(model.parameters(), lr=0.5, betas=(0.5, 0.5), weight_decay=0.1)
    scheduler2 = torch.optim.lr_scheduler.LinearLR(optimizer2, start_factor=0.5, total_iters=4)
    optimizer2.load_state_dict(saved)
    scheduler2.load_state_dict(saved_sched)
    group = optimizer2.param_groups[0]
    assert (group["betas"], group["weight_decay"]) == ((0.9, 0.999), 0)
    assert scheduler2.base_lrs == [1e-3]  # the scheduler's base_lrs come from its checkpoint


def test_ddp_adds_the_module_prefix(tmp_path):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(nn.Linear(4, 3))
        assert list(ddp.state_dict()) == ["module.weight", "module.bias"]
    finally:
        dist.destroy_process_group()


def test_consume_prefix_is_a_no_op_without_the_prefix():
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present
    state_dict = nn.Linear(4, 3).state_dict()
    consume_prefix_in_state_dict_if_present(state_dict, "module.")
    assert list(state_dict) == ["weight", "bias"]


def test_compiled_model_optimizer_state_dict_has_no_prefix():
    """The optimizer's state dict of a compiled model loads into the plain model's optimizer."""
    model = nn.Linear(4, 3)
    compiled = torch.compile(model)
    optimizer = torch.optim.Adam(compiled.parameters())
    model(torch.randn(8, 4)).sum().backward()  # eager: nothing is compiled
    optimizer.step()
    plain = torch.optim.Adam(nn.Linear(4, 3).parameters())
    plain.load_state_dict(optimizer.state_dict())
    assert list(optimizer.state_dict()["state"]) == [0, 1]


def test_load_state_dict_documents_the_scheduler_order():
    doc = " ".join(torch.optim.Optimizer.load_state_dict.__doc__.split())
    assert "called after initializing :class:`torch.optim.lr_scheduler.LRScheduler`" in doc


def test_casting_adam_state_to_float16_erases_second_moments():
    """The warning under the in-place repair: float32 state loaded into a float16 model."""
    torch.manual_seed(0)
    model = nn.Linear(64, 64)
    optimizer = torch.optim.Adam(model.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        (model(torch.randn(16, 64)) ** 2).mean().backward()
        optimizer.step()
    saved = optimizer.state_dict()
    assert (saved["state"][0]["exp_avg_sq"] > 0).all()
    assert saved["state"][0]["exp_avg_sq"].min() < 6e-8  # below float16's smallest number

    model.half()
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(saved)
    v = optimizer.state[model.weight]["exp_avg_sq"]
    assert v.dtype == torch.float16 and (v == 0).sum() > v.numel() // 10
    (model(torch.randn(16, 64).half()) ** 2).float().mean().backward()
    optimizer.step()
    assert not torch.isfinite(model.weight).all()

    # float64, as on the page's stand-in, keeps every moment
    double = nn.Linear(64, 64).double()
    optimizer = torch.optim.Adam(double.parameters())
    optimizer.load_state_dict(saved)
    assert torch.equal(optimizer.state[double.weight]["exp_avg_sq"],
                       saved["state"][0]["exp_avg_sq"].double())


def _errors_namespace():
    """The page's blocks, run in a temporary directory as the page runs them (they save
    checkpoint.pt where they run)."""
    import contextlib
    import tempfile

    from cookbook_testing.pages import SNIPPETS, sections_namespace
    ns: dict = {}
    errors = SNIPPETS / "troubleshooting" / "errors"
    with tempfile.TemporaryDirectory() as cwd, contextlib.chdir(cwd):
        for path, sections in ((errors / "running_example.py", ["setup"]),
                               (SNIPPETS / "lib" / "checkpoint_files.py", ["load_by_name"]),
                               (errors / "param_groups.py", ["order_silent", "order_fix"])):
            sections_namespace(path, *sections, into=ns)
    return ns


def test_load_by_name_handles_new_removed_prefixed_and_misshapen_parameters():
    ns = _errors_namespace()
    Net, train, load_by_name = ns["Net"], ns["train"], ns["load_by_name"]
    old = Net()
    old_optimizer = torch.optim.Adam(old.named_parameters())
    train(old, old_optimizer)
    saved = old_optimizer.state_dict()

    class NewHead(Net):  # fine-tuning: a new head, and an extra layer
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 7)
            self.extra = nn.Linear(7, 7)

    model = NewHead()
    optimizer = torch.optim.Adam(model.named_parameters())
    with pytest.raises(ValueError, match=r"head.weight: saved exp_avg has shape \(4, 8\), "
                                         r"the parameter \(7, 8\)"):
        load_by_name(optimizer, saved)

    backbone = [(n, p) for n, p in model.named_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.Adam(backbone)
    new, dropped = load_by_name(optimizer, saved)
    assert new == ["extra.weight", "extra.bias"] and dropped == ["head.bias", "head.weight"]
    assert model.extra.weight not in optimizer.state
    assert torch.equal(optimizer.state[model.fc2.weight]["exp_avg"],
                       old_optimizer.state[old.fc2.weight]["exp_avg"])
    assert optimizer.param_groups[0]["param_names"] == [n for n, _ in backbone]  # its own names

    # prefixes on either side: a DDP-style checkpoint into a compiled-style optimizer
    wrapped = torch.nn.Module()
    wrapped.module = Net()
    prefixed = torch.optim.Adam(wrapped.named_parameters())
    train(wrapped.module, prefixed)
    compiled_like = Net()
    target = torch.optim.Adam([("_orig_mod." + n, p) for n, p in compiled_like.named_parameters()])
    assert load_by_name(target, prefixed.state_dict()) == ([], [])
    assert torch.equal(target.state[compiled_like.head.bias]["exp_avg"],
                       prefixed.state[wrapped.module.head.bias]["exp_avg"])

    unnamed = torch.optim.Adam(Net().parameters())
    with pytest.raises(ValueError, match="this optimizer has no param_names: build the optimizer "
                                         r"from model.named_parameters\(\) \(torch 2.6 or later\)"):
        load_by_name(unnamed, saved)

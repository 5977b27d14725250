"""Claims of docs/scale/amp-compile.md that its blocks do not assert themselves."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))


def test_float16_loses_small_gradients_and_bfloat16_has_float32_range():
    assert torch.tensor(1e-8, dtype=torch.float16).item() == 0.0
    assert torch.finfo(torch.float16).max == 65504.0
    assert torch.finfo(torch.bfloat16).max == pytest.approx(torch.finfo(torch.float32).max, rel=0.01)


def test_scaler_halves_after_overflow_and_doubles_after_growth_interval():
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=3)
    x = torch.randn(8, 20)

    def step(loss_factor):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = model(x).pow(2).mean() * loss_factor
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step(float("inf"))  # overflow: step skipped, scale halved
    assert scaler.get_scale() == 2.0 and not optimizer.state
    for _ in range(3):
        step(1.0)
    assert scaler.get_scale() == 4.0  # three good steps: doubled
    assert int(optimizer.state[model[0].weight]["step"]) == 3


@pytest.mark.parametrize("backend", ["inductor", "aot_eager", "eager"])
def test_the_prefix_does_not_depend_on_the_backend(backend):
    model = small_model()
    compiled = torch.compile(model, backend=backend)  # nothing is compiled before a call
    assert type(compiled).__name__ == "OptimizedModule" and compiled._orig_mod is model
    assert list(compiled.state_dict()) == ["_orig_mod." + k for k in model.state_dict()]


def test_strict_false_silently_loads_nothing():
    source, target = small_model(), nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    prefixed = torch.compile(source, backend="eager").state_dict()
    result = target.load_state_dict(prefixed, strict=False)  # no exception
    assert len(result.missing_keys) == len(result.unexpected_keys) == 4
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    consume_prefix_in_state_dict_if_present(prefixed, "_orig_mod.")
    target.load_state_dict(prefixed)
    assert all(torch.equal(source.state_dict()[k], v) for k, v in target.state_dict().items())


@pytest.mark.cuda
def test_inductor_on_gpu_saves_and_loads_without_prefix(tmp_path):
    """The default backend, compiled for real: save model.state_dict(), load both ways."""
    model = small_model().cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    compiled = torch.compile(model)
    x, y = torch.randn(32, 20, device="cuda"), torch.randn(32, 2, device="cuda")
    for _ in range(3):
        optimizer.zero_grad()
        F.mse_loss(compiled(x), y).backward()
        optimizer.step()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()},
               tmp_path / "ckpt.pt")
    checkpoint = torch.load(tmp_path / "ckpt.pt", map_location="cpu", weights_only=True)
    assert list(checkpoint["model"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]

    plain = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2)).cuda()
    plain.load_state_dict(checkpoint["model"])
    again = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2)).cuda()
    again.load_state_dict(checkpoint["model"])
    again = torch.compile(again)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(plain(x), expected)
        torch.testing.assert_close(again(x), expected)  # Inductor's kernels: allclose


def test_module_compile_in_place_has_no_prefix():
    model = small_model()
    keys = list(model.state_dict())
    model.compile(backend="eager")
    model(torch.randn(2, 20))
    assert list(model.state_dict()) == keys and not keys[0].startswith("_orig_mod.")


def test_optimizer_from_the_compiled_wrapper_records_prefixed_names():
    compiled = torch.compile(small_model(), backend="eager")
    optimizer = torch.optim.Adam(compiled.named_parameters())
    assert optimizer.state_dict()["param_groups"][0]["param_names"][0] == "_orig_mod.0.weight"


@pytest.mark.cuda
def test_compiled_optimizer_step_on_cuda_saves_capturable_true():
    model = small_model().cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    assert optimizer.param_groups[0]["capturable"] is False

    @torch.compile
    def step():
        optimizer.step()

    F.mse_loss(model(torch.randn(8, 20, device="cuda")), torch.zeros(8, 2, device="cuda")).backward()
    step()
    saved = optimizer.state_dict()
    assert saved["param_groups"][0]["capturable"] is True

    cpu_model = small_model()
    cpu_optimizer = torch.optim.Adam(cpu_model.parameters(), lr=1e-3)
    cpu_optimizer.load_state_dict(saved)
    F.mse_loss(cpu_model(torch.randn(8, 20)), torch.zeros(8, 2)).backward()
    with pytest.raises(AssertionError, match="If capturable=True, params and state_steps must be "
                                             "on supported devices"):
        cpu_optimizer.step()

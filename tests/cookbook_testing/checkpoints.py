"""Checkpoint fixtures that a CPU-only machine cannot make by itself."""

from __future__ import annotations

import contextlib

import torch
import torch.serialization as serialization


@contextlib.contextmanager
def saved_as_if_on(tag):
    """While active, `torch.save` tags CPU storages as a save on another device would.

    `tag` is a location ("cuda:0") or a function storage -> location or None (None: keep "cpu").
    A CPU-only test can then load a "GPU checkpoint" and meet the real error.
    """
    if isinstance(tag, str):
        location = tag
        tag = lambda storage: location if storage.device.type == "cpu" else None  # noqa: E731
    serialization.register_package(0, tag, lambda obj, location: None)
    try:
        yield
    finally:
        serialization._package_registry[:] = [e for e in serialization._package_registry
                                               if e[1] is not tag]


def small_state(step: int, n: int = 1000) -> dict:
    """A checkpoint-shaped dict whose every tensor holds `step`: complete iff all agree."""
    return {
        "step": step,
        "model": {"weight": torch.full((n,), float(step)), "bias": torch.full((3,), float(step))},
        "optimizer": {
            "state": {0: {"exp_avg": torch.full((n,), float(step)),
                          "exp_avg_sq": torch.full((n,), float(step)),
                          "step": torch.tensor(float(step))}},
            "param_groups": [{"lr": 1e-3, "weight_decay": 0.0, "params": [0]}],
        },
    }


def assert_complete(state: dict, step: int) -> None:
    assert state["step"] == step
    tensors = [*state["model"].values(), *state["optimizer"]["state"][0].values()]
    assert all(bool((t == step).all()) for t in tensors), f"mixed content in step {step}"
    assert state["optimizer"]["param_groups"] == [
        {"lr": 1e-3, "weight_decay": 0.0, "params": [0]}]


def tagged_checkpoint(path, location: str) -> None:
    """A small checkpoint whose storages are tagged `location` ("cuda:0"), as torch.save
    writes one on that device, made on any machine."""
    with saved_as_if_on(location):
        torch.save({"w": torch.ones(3)}, path)


def trained_adam(device="cpu", **adam):
    """A Linear(4, 3) and an Adam that has taken one step (its state exists)."""
    model = torch.nn.Linear(4, 3).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **adam)
    model(torch.randn(8, 4, device=device)).sum().backward()
    optimizer.step()
    return model, optimizer

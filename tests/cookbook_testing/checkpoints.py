"""Checkpoint fixtures that a CPU-only machine cannot make by itself."""

from __future__ import annotations

import contextlib

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

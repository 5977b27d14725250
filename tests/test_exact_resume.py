"""Exact resume (docs/recipes/exact-resume.md): bitwise equal after a resume in a new process.

The definitions are the page's own `setup`, `save` and `load` sections of
snippets/recipes/exact_resume.py, executed here and in the child processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pages import DOCS, SNIPPETS, section_source

pytestmark = pytest.mark.xdist_group("exact_resume")  # module fixtures: one worker

SNIPPET = SNIPPETS / "recipes" / "exact_resume.py"
PAGES = [DOCS / "recipes" / "exact-resume.md", DOCS / "recipes" / "exact-resume.ja.md"]
OMISSIONS = ["optimizer", "scheduler", "batches_done", "loader_generator",
             "torch_rng", "numpy_rng", "python_rng"]


def definitions() -> str:
    """The page's definitions (setup, save_checkpoint, resume) without the runs around them."""
    return section_source(SNIPPET, "setup", "save", "load")


DEFS = definitions()

# Run in a fresh interpreter: k steps were done and saved by another process.
CHILD = """
import sys, torch
{defs}
device = sys.argv[1]
if device == "cuda":
    torch.use_deterministic_algorithms(True)
if sys.argv[2] == "save":
    first = Trainer(device=device)
    first.train_until(25)
    save_checkpoint(first, "checkpoint.pt")
    reference = Trainer(device=device)
    reference.train_until(TOTAL_STEPS)
    torch.save(reference.model.state_dict(), "reference.pt")
else:
    resumed = resume("checkpoint.pt", device=device)
    resumed.train_until(TOTAL_STEPS)
    torch.save(resumed.model.state_dict(), "resumed.pt")
"""


def run_child(tmp_path: Path, device: str, what: str, env=None):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(defs=DEFS), encoding="utf-8")
    subprocess.run([sys.executable, str(script), device, what], cwd=tmp_path, check=True,
                   env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def ns():
    namespace = {"__name__": "exact_resume_test"}
    exec(compile(DEFS, str(SNIPPET), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def saved(ns, tmp_path_factory):
    """Uninterrupted reference and a checkpoint after 25 steps, made in this process."""
    path = tmp_path_factory.mktemp("exact")
    reference = ns["Trainer"]()
    reference.train_until(ns["TOTAL_STEPS"])
    first = ns["Trainer"]()
    first.train_until(25)
    ns["save_checkpoint"](first, path / "checkpoint.pt")
    return path, reference


def params(state):
    return [t.cpu() for t in state.values()]


def test_resume_in_a_new_process_is_bitwise_equal(saved, ns):
    path, reference = saved
    run_child(path, "cpu", "resume")
    resumed = torch.load(path / "resumed.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in
               zip(params(resumed), params(reference.model.state_dict())))


def test_checkpoint_is_weights_only_and_stops_mid_epoch(saved):
    path, _ = saved
    checkpoint = torch.load(path / "checkpoint.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batches_done"], checkpoint["step"]) == (1, 9, 25)
    assert isinstance(checkpoint["numpy_rng"], dict)


@pytest.mark.parametrize("part", OMISSIONS)
def test_each_omission_breaks_bitwise_equality(saved, ns, part):
    path, reference = saved
    trainer = ns["resume"](path / "checkpoint.pt", skip={part})
    trainer.train_until(ns["TOTAL_STEPS"])
    assert not all(torch.equal(a, b) for a, b in zip(params(trainer.model.state_dict()),
                                                     params(reference.model.state_dict())))


def test_legacy_numpy_state_is_not_weights_only(tmp_path):
    """The page: np.random.get_state() holds an array and fails with weights_only=True."""
    torch.save({"numpy_rng": np.random.get_state()}, tmp_path / "legacy.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "legacy.pt", weights_only=True)
    rng = np.random.default_rng(0)
    torch.save({"numpy_rng": rng.bit_generator.state}, tmp_path / "new.pt")
    assert torch.load(tmp_path / "new.pt", weights_only=True)["numpy_rng"] == rng.bit_generator.state


@pytest.mark.cuda
def test_resume_on_gpu_is_bitwise_equal_with_deterministic_settings(tmp_path):
    env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    run_child(tmp_path, "cuda", "save", env)
    run_child(tmp_path, "cuda", "resume", env)
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(params(resumed), params(reference)))

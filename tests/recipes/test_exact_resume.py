"""Exact resume (docs/recipes/exact-resume.md): bitwise equal after a resume in a new process.

The definitions are the page's own `setup`, `save` and `load` sections of
snippets/recipes/exact_resume.py, executed here and in the child processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cookbook_testing.pages import ROOT, SNIPPETS, program_env, section_source

pytestmark = [pytest.mark.xdist_group("exact_resume"), pytest.mark.slow]  # module fixtures: one worker

SNIPPET = SNIPPETS / "recipes" / "exact_resume.py"
OMISSIONS = ["optimizer", "scheduler", "batches_done", "loader_generator",
             "torch_rng", "numpy_rng", "python_rng"]


def definitions() -> str:
    """The page's definitions (setup, save_checkpoint, resume) without the runs around them."""
    return section_source(SNIPPET, "setup", "save", "load")


DEFS = definitions()



def run_child(tmp_path: Path, device: str, what: str, env=None):
    subprocess.run([sys.executable, str(ROOT / "tests" / "programs" / "exact_resume_half.py"),
                    device, what], cwd=tmp_path, check=True, env={**program_env(), **(env or {})},
                   timeout=300)


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


def test_generator_state_is_weights_only(tmp_path):
    """The page stores numpy's Generator state, a plain dict. (That the legacy
    np.random.get_state() fails with weights_only=True is asserted with its message in
    tests/troubleshooting/test_errors.py, the page that quotes it.)"""
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


# --- where bitwise equality holds ----------------------------------------------------------

@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT",
                    reason="this process already runs the plain kernels: nothing to compare")
def test_resume_under_other_cpu_kernels_is_close_not_bitwise(saved):
    """Saved here (AVX2 or AVX-512 kernels), resumed in a new process forced to the plain ones."""
    path, reference = saved
    run_child(path, "cpu", "resume", {"ATEN_CPU_CAPABILITY": "default"})
    resumed = params(torch.load(path / "resumed.pt", weights_only=True))
    expected = params(reference.model.state_dict())
    assert not all(torch.equal(a, b) for a, b in zip(resumed, expected))
    assert max((a - b).abs().max().item() for a, b in zip(resumed, expected)) < 1e-4


# --- data loaders: the claims of the section "Data loaders" --------------------------------

class _Noisy(torch.utils.data.Dataset):
    """Index plus a random draw per item: shows the order and the workers' seeds."""

    def __len__(self):
        return 32

    def __getitem__(self, i):
        import random
        return torch.tensor([float(i), torch.rand(()).item(), random.random()])


def _epoch(loader, skip=0):
    import itertools
    return [(b if torch.is_tensor(b) else b[0]).tolist() for b in itertools.islice(loader, skip, None)]


def test_without_a_loader_generator_the_epoch_order_is_not_restored():
    data = torch.utils.data.TensorDataset(torch.arange(32))
    torch.manual_seed(0)
    state = torch.get_rng_state()  # what a checkpoint would hold
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    torch.rand(3)  # any draw between the checkpoint and the epoch start (dropout, ...)
    first = _epoch(loader)
    torch.set_rng_state(state)
    torch.rand(5)  # the resumed process draws differently before its first epoch
    assert _epoch(loader) != first

    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, generator=g)
    saved = g.get_state()
    first = _epoch(loader)
    g.set_state(saved)
    torch.rand(5)
    assert _epoch(loader) == first


def test_workers_draw_their_seeds_from_the_loader_generator():
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(_Noisy(), batch_size=4, shuffle=True, generator=g,
                                         num_workers=2)
    saved = g.get_state()
    first = _epoch(loader)
    g.set_state(saved)
    assert _epoch(loader, skip=3) == first[3:]  # same order, same torch and random draws


def test_distributed_sampler_needs_set_epoch():
    sampler = torch.utils.data.DistributedSampler(range(32), num_replicas=2, rank=0, seed=7)
    orders = [list(sampler) for _ in range(2)]
    assert orders[0] == orders[1]  # set_epoch never called: every epoch the same
    sampler.set_epoch(3)
    epoch3 = list(sampler)
    resumed = torch.utils.data.DistributedSampler(range(32), num_replicas=2, rank=0, seed=7)
    resumed.set_epoch(3)
    assert list(resumed) == epoch3 != orders[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_mid_epoch(tmp_path, workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")

    def loader(seed):
        return stateful.StatefulDataLoader(_Noisy(), batch_size=4, shuffle=True,
                                           generator=torch.Generator().manual_seed(seed),
                                           num_workers=workers)

    first = loader(0)
    batches = iter(first)
    for _ in range(3):
        next(batches)
    torch.save({"loader": first.state_dict()}, tmp_path / "checkpoint.pt")
    rest = [b.tolist() for b in batches]

    resumed = loader(123)  # another seed: the state dict decides
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["loader"])
    again = [b.tolist() for b in resumed]
    assert len(rest) == 5
    assert [[row[0] for row in b] for b in again] == [[row[0] for row in b] for b in rest]
    # The position and the order come back; the dataset's own random draws do not: in the
    # main process they come from the global generator (restore it as the page does), in
    # workers from per-worker seeds that the loader's state dict does not restore.
    assert again != rest


def test_a_stateful_loader_seeded_per_epoch_keeps_every_epoch_after_a_mid_epoch_resume():
    """Without the per-epoch seed the next epoch comes in another order
    (tests/frameworks/test_frameworks.py); with it, every epoch equals the run that never stopped."""
    import warnings

    from torchdata.stateful_dataloader import StatefulDataLoader

    def make():
        generator = torch.Generator()
        return StatefulDataLoader(list(range(16)), batch_size=4, shuffle=True,
                                  generator=generator), generator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, generator = make()
        epochs = []
        for epoch in range(3):
            generator.manual_seed(100 + epoch)
            epochs.append([b.tolist() for b in reference])
        stopped, generator = make()
        generator.manual_seed(100)
        batches = iter(stopped)
        done = [next(batches).tolist() for _ in range(2)]
        resumed, generator = make()
        resumed.load_state_dict(stopped.state_dict())
        seen = [done + [b.tolist() for b in resumed]]  # the rest of epoch 0: no new seed
        for epoch in (1, 2):
            generator.manual_seed(100 + epoch)
            seen.append([b.tolist() for b in resumed])
    assert seen == epochs

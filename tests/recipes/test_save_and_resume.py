"""Claims of docs/recipes/save-and-resume.md that its blocks do not assert themselves."""

from __future__ import annotations

import re

import pytest
import torch

from cookbook_testing.checkpoints import trained_adam
from cookbook_testing.pages import ROOT, program_env


def test_load_state_dict_overwrites_constructor_hyperparameters():
    model, optimizer = trained_adam()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
    saved_opt, saved_sched = optimizer.state_dict(), scheduler.state_dict()

    optimizer2 = torch.optim.Adam(model.parameters(), lr=0.5)
    scheduler2 = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer2, factor=0.5, patience=1)
    optimizer2.load_state_dict(saved_opt)
    scheduler2.load_state_dict(saved_sched)
    assert optimizer2.param_groups[0]["lr"] == 1e-3
    assert (scheduler2.factor, scheduler2.patience) == (0.1, 5)


def test_adam_state_is_two_tensors_per_parameter():
    """Adam holds two tensors the size of each parameter (plus a scalar step)."""
    model, optimizer = trained_adam()
    for p in model.parameters():
        state = optimizer.state[p]
        assert state["exp_avg"].shape == state["exp_avg_sq"].shape == p.shape
        assert state["step"].numel() == 1


@pytest.mark.cuda
def test_moving_the_model_after_loading_breaks_step():
    model, optimizer = trained_adam("cpu")
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(optimizer.state_dict())
    model.to("cuda")
    model(torch.randn(8, 4, device="cuda")).sum().backward()
    with pytest.raises(RuntimeError, match="device") as info:
        fresh.step()
    print(f"message: {info.value}")
    assert re.search(r"cuda:0 and cpu|cpu and cuda:0", str(info.value))


@pytest.mark.cuda
def test_map_location_cuda_puts_step_on_the_gpu(tmp_path):
    model, optimizer = trained_adam("cpu")
    torch.save(optimizer.state_dict(), tmp_path / "opt.pt")
    model.to("cuda")
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(torch.load(tmp_path / "opt.pt", map_location="cuda", weights_only=True))
    for p in model.parameters():
        assert fresh.state[p]["step"].device.type == "cuda"
        assert fresh.state[p]["exp_avg"].device.type == "cuda"


@pytest.mark.cuda
def test_fused_adam_keeps_step_on_the_parameters_device():
    model, optimizer = trained_adam("cuda", fused=True)
    for p in model.parameters():
        assert optimizer.state[p]["step"].device == p.device




@pytest.mark.slow
@pytest.mark.parametrize("how, returncode", [
    ("in-place", -7),  # SIGBUS: the shell reports exit code 128 + 7 = 135
    ("recipe", 0),
])
def test_saving_over_a_mapped_checkpoint(tmp_path, how, returncode):
    """In place: killed by SIGBUS, the file left broken. The recipe's save: no harm."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "programs" / "mmap_save.py"), how],
                          cwd=tmp_path, capture_output=True, timeout=120, env=program_env())
    assert proc.returncode == returncode, proc.stderr.decode()[-2000:]
    if returncode == 0:
        state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
        assert state["optimizer"]["state"][0]["exp_avg"].shape == (256, 256)
        assert not (tmp_path / "checkpoint.pt.tmp").exists()
    else:
        with pytest.raises(Exception):
            torch.load(tmp_path / "checkpoint.pt", weights_only=True)


def test_load_state_dict_keeps_the_given_tensors():
    """One dict loaded into two optimizers: shared `step` and moments; deepcopy separates them."""
    import copy

    model, optimizer = trained_adam()
    saved = optimizer.state_dict()

    def load(state):
        new = torch.nn.Linear(4, 3)
        new_optimizer = torch.optim.Adam(new.parameters(), lr=1e-3)
        new_optimizer.load_state_dict(state)
        return new, new_optimizer

    pairs = [load(saved), load(saved)]
    assert pairs[0][1].state[pairs[0][0].weight]["step"] is saved["state"][0]["step"]
    for new, new_optimizer in pairs:
        new(torch.randn(8, 4)).sum().backward()
        new_optimizer.step()
    steps = [o.state[m.weight]["step"].item() for m, o in pairs]
    assert steps == [3.0, 3.0] and saved["state"][0]["step"].item() == 3.0  # not 2, 2 and 1

    model, optimizer = trained_adam()
    saved = optimizer.state_dict()
    pairs = [load(copy.deepcopy(saved)), load(copy.deepcopy(saved))]
    for new, new_optimizer in pairs:
        new(torch.randn(8, 4)).sum().backward()
        new_optimizer.step()
    assert [o.state[m.weight]["step"].item() for m, o in pairs] == [2.0, 2.0]
    assert saved["state"][0]["step"].item() == 1.0


def test_a_failed_save_leaves_the_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    from cookbook_testing.pages import SNIPPETS, section_source

    class FailsHalfway:
        def __reduce__(self):
            raise RuntimeError("interrupted")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"the previous checkpoint")
    code = section_source(SNIPPETS / "recipes" / "save_and_resume.py", "save_checkpoint")
    from types import SimpleNamespace

    ns = {"os": __import__("os"), "torch": torch, "model": torch.nn.Linear(2, 2), "epoch": 0,
          "optimizer": SimpleNamespace(state_dict=lambda: {"x": FailsHalfway()}),  # fails midway
          "scheduler": SimpleNamespace(state_dict=dict)}
    with pytest.raises(RuntimeError, match="interrupted"):
        exec(code, ns)
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]

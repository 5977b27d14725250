"""docs/scale/distributed.md in fresh processes, started with `spawn` as torchrun starts them.

The page's blocks run the workers in 2 forked processes (gloo), saving in one launch and
resuming in another. Here the same worker functions of snippets/scale/distributed.py run in
new interpreters (start method `spawn`): to keep the suite fast, one launch of 2 processes
saves everything and then resumes everything from the files into newly built objects,
requiring bitwise equality with the runs that never stopped. The NCCL variant (marked cuda) runs the
same on GPUs with world size min(2, number of GPUs): 1 on a single-GPU machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import socket
import sys
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cookbook_testing.pages import ROOT, SNIPPETS, assert_quoted, both_languages, fences

pytestmark = [pytest.mark.xdist_group("distributed"), pytest.mark.slow]  # module fixtures: one worker

PAGES = both_languages("scale/distributed.md")


def snippet():
    """snippets/scale/distributed.py as a module (its page runs are under __main__)."""
    if "scale_distributed" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "scale_distributed", SNIPPETS / "scale" / "distributed.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["scale_distributed"] = module
        spec.loader.exec_module(module)
    return sys.modules["scale_distributed"]


def _save_all():
    D = snippet()
    D.ddp_train()
    D.dcp_train("fsdp")
    D.dcp_train("ddp")
    D.dcp_train_async("fsdp")
    if dist.get_rank() == 0:  # to one file and back
        D.dcp_to_torch_save(D.latest_checkpoint("ckpt_fsdp"), "ckpt_full.pt")
        D.torch_save_to_dcp("ckpt_full.pt", "ckpt_again/step-00000005")
        with open("ckpt_again/latest", "w") as f:
            f.write("step-00000005")
    # get_state_dict names parameters without the wrappers' prefixes:
    model, optimizer = D.build_parallel(D.device_for_rank(), "ddp")
    model_sd, optim_sd = D.get_state_dict(model, optimizer)
    assert list(model_sd) == ["0.weight", "0.bias", "2.weight", "2.bias"], list(model_sd)
    if "nccl" in dist.get_backend():
        # torch.load without map_location: back on the device it was saved from (cuda:0).
        assert torch.load("ddp.pt", weights_only=True)["model"]["0.weight"].device == \
            torch.device("cuda", 0)
        # async_save with a process group that has NCCL alone:
        nccl_only = dist.new_group(backend="nccl")
        try:
            D.dcp.async_save({"w": torch.zeros(2)}, checkpoint_id="never",
                             process_group=nccl_only)
        except AssertionError as error:
            assert f"AssertionError: {error}" == ASYNC_MESSAGE
        else:
            raise AssertionError("async_save accepted an NCCL-only group")


def _resume_all():
    D = snippet()
    D.ddp_resume()  # each function asserts bitwise equality with the uninterrupted run
    D.dcp_resume("ckpt_fsdp", "fsdp")
    D.dcp_resume("ckpt_ddp", "ddp")
    D.dcp_resume("ckpt_async", "fsdp")
    D.dcp_resume("ckpt_again", "fsdp")
    D.dcp_check_loaded("ckpt_fsdp", "fsdp")
    dist.barrier()


def _save_and_resume_all():
    _save_all()
    dist.barrier()
    _resume_all()


def _entry(rank, world_size, port, backend, cwd):
    os.chdir(cwd)
    D = snippet()
    D._run(rank, _save_and_resume_all, (), world_size, port, backend)


def run_save_and_resume(cwd, world_size, backend):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_entry, args=(world_size, port, backend, str(cwd)),
                       nprocs=world_size, start_method="spawn")


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory):
    """2 new processes on the CPU (gloo): save, then resume from the files."""
    path = tmp_path_factory.mktemp("dist")
    run_save_and_resume(path, 2, "gloo")
    return path


def test_resume_in_spawned_processes_is_bitwise_equal(gloo_run):
    # The workers assert bitwise equality; here: every artefact is there.
    for name in ("ddp.pt", "ckpt_fsdp", "ckpt_ddp", "ckpt_async", "ckpt_again",
                 "dcp_fsdp_uninterrupted.pt"):
        assert (gloo_run / name).exists(), name


def test_each_process_writes_its_own_file_and_one_metadata_file(gloo_run):
    assert sorted(p.name for p in (gloo_run / "ckpt_fsdp").iterdir()) == ["latest", "step-00000005"]
    assert (gloo_run / "ckpt_fsdp" / "latest").read_text() == "step-00000005"
    files = sorted(p.name for p in (gloo_run / "ckpt_fsdp" / "step-00000005").iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp"], files
    assert_quoted("scale/distributed.md", "`__0_0.distcp`", "`.metadata`")


def test_torchrun_sets_the_variables_the_page_names():
    import inspect

    from torch.distributed.elastic.agent.server import local_elastic_agent

    source = inspect.getsource(local_elastic_agent)  # the environment of every worker
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        assert f'"{name}": ' in source, name
    assert 'worker_env["LOCAL_RANK"] = str(local_rank)' in source


def test_a_sharded_checkpoint_loads_in_one_process_without_a_process_group(gloo_run, monkeypatch):
    D = snippet()
    monkeypatch.chdir(gloo_run)
    assert not dist.is_initialized()
    model = D.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model_sd, optim_sd = D.get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to load in a single process"
        D.dcp.load(state, checkpoint_id=D.latest_checkpoint("ckpt_fsdp"))
    D.set_state_dict(model, optimizer, model_state_dict=state["model"],
                     optim_state_dict=state["optimizer"])
    expected = torch.load("dcp_fsdp_step5.pt", weights_only=True)
    assert all(torch.equal(t, expected[k]) for k, t in model.state_dict().items())
    assert {int(s["step"]) for s in optimizer.state.values()} == {5}


def test_single_file_round_trip_and_what_torch_save_to_dcp_unpickles(tmp_path):
    D = snippet()
    # torch_save_to_dcp reads its input with weights_only=False: a non-tensor global loads.
    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, tmp_path / "a.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "a.pt", weights_only=True)
    D.torch_save_to_dcp(tmp_path / "a.pt", tmp_path / "a_dcp")
    D.dcp_to_torch_save(tmp_path / "a_dcp", tmp_path / "b.pt")
    back = torch.load(tmp_path / "b.pt", weights_only=False)
    assert back["args"].lr == 0.1 and torch.equal(back["w"], torch.ones(2))


ASYNC_MESSAGE = ("AssertionError: A CPU backend must be enabled for async save; "
                 "try initializing process group with 'cpu:gloo,cuda:nccl'")


def test_async_save_without_a_cpu_backend_fails_as_the_page_says(tmp_path):
    D = snippet()
    # A group whose only device type is CUDA (gloo serving "cuda"): no CPU backend.
    dist.init_process_group("cuda:gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with pytest.raises(AssertionError) as info:
            D.dcp.async_save({"w": torch.zeros(2)}, checkpoint_id=str(tmp_path / "x"))
    finally:
        dist.destroy_process_group()
    shown = f"{type(info.value).__name__}: {info.value}"
    assert shown == ASYNC_MESSAGE
    assert_quoted("scale/distributed.md", ASYNC_MESSAGE)


def test_the_torchrun_commands_on_the_page_parse():
    from torch.distributed.run import get_args_parser

    for page in PAGES:
        commands = [body for _, info, body in fences(page.read_text(encoding="utf-8"))
                    if info.split()[:1] == ["bash"]]
        assert commands, page
        for body in commands:
            for line in body.replace("\\\n", " ").split("\n"):
                if line.strip().startswith("torchrun"):
                    args = get_args_parser().parse_args(shlex.split(line)[1:])
                    assert args.training_script == "train.py"
                    assert re.fullmatch(r"\d+(:\d+)?", str(args.nnodes))


AUTOGRAD_FORK = ("RuntimeError: Unable to handle autograd's threading in combination with "
                 "fork-based multiprocessing. See https://github.com/pytorch/pytorch/wiki/Autograd-and-Fork")

FORK_AFTER_GPU = ROOT / "tests" / "programs" / "fork_after_gpu.py"


@pytest.mark.cuda
def test_fork_after_training_on_the_gpu_fails_as_the_page_says():
    import subprocess

    out = subprocess.run([sys.executable, str(FORK_AFTER_GPU)], capture_output=True,
                         text=True, timeout=120).stdout
    assert AUTOGRAD_FORK in out, out
    assert_quoted("scale/distributed.md", AUTOGRAD_FORK)


@pytest.mark.cuda
def test_nccl_resume_is_bitwise_equal(tmp_path):
    world_size = min(2, torch.cuda.device_count())
    run_save_and_resume(tmp_path, world_size, "cpu:gloo,cuda:nccl")


def test_plain_load_state_dict_matches_a_name_keyed_state_by_position():
    """The page's warning: names are ignored by optimizer.load_state_dict, not by
    set_optimizer_state_dict(full_state_dict=True)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions, get_optimizer_state_dict, set_optimizer_state_dict)

    class Saved(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(8, 32), torch.nn.Linear(32, 4)

    class Reordered(Saved):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.b, self.a = torch.nn.Linear(32, 4), torch.nn.Linear(8, 32)

    full = StateDictOptions(full_state_dict=True)
    model = Saved()
    optimizer = torch.optim.Adam(model.parameters())
    model.b(model.a(torch.randn(2, 8))).sum().backward()
    optimizer.step()
    saved = get_optimizer_state_dict(model, optimizer, options=full)
    assert list(saved["state"]) == ["a.weight", "a.bias", "b.weight", "b.bias"]

    new = Reordered()
    plain = torch.optim.Adam(new.parameters())
    plain.load_state_dict(saved)  # no error...
    assert plain.state[new.b.weight]["exp_avg"].shape == (32, 8) != new.b.weight.shape

    new = Reordered()
    by_name = torch.optim.Adam(new.parameters())
    set_optimizer_state_dict(new, by_name, saved, options=full)
    assert torch.equal(by_name.state[new.b.weight]["exp_avg"], optimizer.state[model.b.weight]["exp_avg"])


@pytest.mark.parametrize("entry", ["dcp.load", "dcp_to_torch_save"])
def test_dcp_entry_points_unpickle_metadata_with_plain_pickle(tmp_path, monkeypatch, entry):
    """The page's warning: a crafted .metadata runs its payload before the load fails."""
    import pickle

    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "payload_ran.txt"), "w"))

    (tmp_path / "crafted").mkdir()
    (tmp_path / "crafted" / ".metadata").write_bytes(pickle.dumps(Payload()))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(), pytest.raises(BaseException):  # CheckpointException
        warnings.simplefilter("ignore")
        if entry == "dcp.load":
            dcp.load({"w": torch.zeros(2)}, checkpoint_id="crafted", no_dist=True)
        else:
            dcp_to_torch_save("crafted", "out.pt")
    assert (tmp_path / "payload_ran.txt").exists()


def test_dcp_save_into_an_existing_directory_rewrites_the_shards_in_place(tmp_path):
    """Why save_step uses one directory per step: the shard file keeps its inode (written in
    place, so a crash mid-save damages the old checkpoint); only .metadata is renamed."""
    import torch.distributed.checkpoint as dcp

    path = tmp_path / "ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save({"w": torch.zeros(1000)}, checkpoint_id=path, no_dist=True)
        before = {p.name: p.stat().st_ino for p in path.iterdir()}
        dcp.save({"w": torch.ones(1000)}, checkpoint_id=path, no_dist=True)
    after = {p.name: p.stat().st_ino for p in path.iterdir()}
    shard = next(n for n in before if n.endswith(".distcp"))
    assert after[shard] == before[shard]
    assert after[".metadata"] != before[".metadata"]


def test_latest_checkpoint_says_what_is_missing(tmp_path):
    D = snippet()
    with pytest.raises(FileNotFoundError, match="no checkpoint was completed in .*: start from scratch"):
        D.latest_checkpoint(str(tmp_path))
    (tmp_path / "latest").write_text("step-00000007")
    with pytest.raises(FileNotFoundError, match="holds no complete checkpoint: it was deleted or "
                                                "damaged; load an older step directory"):
        D.latest_checkpoint(str(tmp_path))

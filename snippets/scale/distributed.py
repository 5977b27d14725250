# Recipe: checkpoints in distributed training (DDP, FSDP2, torch.distributed.checkpoint).
# Page: docs/scale/distributed.md (and .ja.md). Sections are embedded in page order.
# The worker functions read rank and world size from the process group, as under torchrun;
# `launch` starts them on this machine (127.0.0.1) for the page and the tests.

# --8<-- [start:setup]
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def build_model(device="cpu"):
    torch.manual_seed(0)  # the same initial weights on every rank
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4)).to(device)


def batch(step, device="cpu"):
    """This rank's batch for a global step: synthetic, and different on every rank."""
    g = torch.Generator().manual_seed(1000 * step + dist.get_rank())
    x, y = torch.randn(16, 8, generator=g), torch.randn(16, 4, generator=g)
    return x.to(device), y.to(device)


def train(model, optimizer, steps, device="cpu"):
    for step in steps:
        x, y = batch(step, device)
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
# --8<-- [end:setup]


# --8<-- [start:launch]
import torch._dynamo  # noqa: F401  DDP imports it on first use: once here, not in every process


def launch(worker, world_size=2, *args, backend="gloo", start_method="fork"):
    """Run worker(*args) in `world_size` processes on this machine, like torchrun would."""
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_run, args=(worker, args, world_size, port, backend),
                       nprocs=world_size, start_method=start_method)


def _run(rank, worker, args, world_size, port, backend):
    # The variables torchrun sets for each process it starts:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)  # the processes share this machine's cores
    if "nccl" in backend:
        torch.cuda.set_device(rank)  # one GPU per process (under torchrun: LOCAL_RANK)
    dist.init_process_group(backend)  # reads the variables above (init_method="env://")
    try:
        worker(*args)
    finally:
        dist.destroy_process_group()
# --8<-- [end:launch]


# --8<-- [start:ddp_train]
from torch.nn.parallel import DistributedDataParallel as DDP


def device_for_rank():
    """This process's GPU under NCCL ("nccl" or "cpu:gloo,cuda:nccl"), else the CPU."""
    if "nccl" in dist.get_backend():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device("cpu")


def ddp_train():
    device = device_for_rank()
    model = DDP(build_model(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, optimizer, range(0, 5), device)

    if dist.get_rank() == 0:  # one writer: every rank holds the same state
        torch.save({"model": model.module.state_dict(),  # .module: no "module." prefix
                    "optimizer": optimizer.state_dict(),
                    "step": 5}, "ddp.pt")
    dist.barrier()  # nobody goes on (or reads ddp.pt) before it is complete

    # The run that never stopped, for the comparison below.
    train(model, optimizer, range(5, 10), device)
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), "ddp_uninterrupted.pt")
# --8<-- [end:ddp_train]


# --8<-- [start:ddp_resume]
def ddp_resume():
    device = device_for_rank()
    # Saved from rank 0's device. Map to the CPU: load_state_dict then copies the
    # weights and the moments to this rank's device, and Adam's `step` stays on the CPU.
    checkpoint = torch.load("ddp.pt", map_location="cpu", weights_only=True)
    model = build_model(device)
    model.load_state_dict(checkpoint["model"])  # before wrapping: plain keys
    model = DDP(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    optimizer.load_state_dict(checkpoint["optimizer"])
    train(model, optimizer, range(checkpoint["step"], 10), device)

    expected = torch.load("ddp_uninterrupted.pt", map_location=device, weights_only=True)
    for name, tensor in model.module.state_dict().items():
        assert torch.equal(tensor, expected[name]), name  # bitwise, on every rank
    assert all(s["step"].device.type == "cpu" and s["exp_avg"].device == device
               for s in optimizer.state.values())
# --8<-- [end:ddp_resume]


# --8<-- [start:ddp_run]
if __name__ == "__main__":
    launch(ddp_train, 2)
    launch(ddp_resume, 2)  # new processes, as after a restart
# --8<-- [end:ddp_run]


# --8<-- [start:module_prefix_save]
def ddp_save_wrapped():
    model = DDP(build_model())
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), "ddp_wrapped.pt")  # the wrapper's state dict


if __name__ == "__main__":
    launch(ddp_save_wrapped, 2)
    state = torch.load("ddp_wrapped.pt", weights_only=True)
    print(list(state))
# --8<-- [end:module_prefix_save]


if __name__ == "__main__":
    try:
        # --8<-- [start:module_prefix_error]
        build_model().load_state_dict(state)
        # --8<-- [end:module_prefix_error]
    except RuntimeError as error:
        print(error)

    # --8<-- [start:module_prefix_fix]
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    consume_prefix_in_state_dict_if_present(state, "module.")  # in place; no-op without it
    build_model().load_state_dict(state)
    # --8<-- [end:module_prefix_fix]


# --8<-- [start:fsdp_train]
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions, get_model_state_dict, get_state_dict, set_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard


def build_parallel(device, parallel="fsdp"):
    model = build_model(device)
    if parallel == "fsdp":
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        for layer in (model[0], model[2]):
            fully_shard(layer, mesh=mesh)  # each rank keeps a shard of every parameter
        fully_shard(model, mesh=mesh)
    else:
        model = DDP(model)  # the same calls below work for DDP
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, optimizer


def full_model_state(model):
    """All shards gathered into plain CPU tensors (collective: every rank calls it)."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def save_step(state, root, step):
    """dcp.save into a new directory root/step-<step>, then point root/latest at it.

    dcp.save rewrites the shard files of an existing directory in place, so a crash while
    saving into the same directory again would destroy the previous checkpoint. One
    directory per step, and a pointer moved only once every rank has written, never does."""
    path = os.path.join(root, f"step-{step:08d}")
    dcp.save(state, checkpoint_id=path)  # collective: returns when every rank's files exist
    if dist.get_rank() == 0:
        tmp = os.path.join(root, "latest.tmp")
        with open(tmp, "w") as f:
            f.write(os.path.basename(path))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(root, "latest"))  # the commit point
    dist.barrier()
    return path


def latest_checkpoint(root):
    """The checkpoint directory that root/latest names."""
    pointer = os.path.join(root, "latest")
    if not os.path.exists(pointer):
        raise FileNotFoundError(f"{pointer}: no checkpoint was completed in {root} (none saved, "
                                "or every save was interrupted): start from scratch")
    with open(pointer) as f:
        path = os.path.join(root, f.read().strip())
    if not os.path.exists(os.path.join(path, ".metadata")):
        raise FileNotFoundError(f"{pointer} names {path}, which holds no complete checkpoint: "
                                "it was deleted or damaged; load an older step directory")
    return path


def dcp_train(parallel="fsdp"):
    device = device_for_rank()
    model, optimizer = build_parallel(device, parallel)
    train(model, optimizer, range(0, 5), device)

    # Every rank writes its own shards, in parallel, into one directory for this step.
    model_sd, optim_sd = get_state_dict(model, optimizer)
    save_step({"model": model_sd, "optimizer": optim_sd}, f"ckpt_{parallel}", step=5)

    full = full_model_state(model)
    if dist.get_rank() == 0:
        torch.save(full, f"dcp_{parallel}_step5.pt")  # for the checks below
    train(model, optimizer, range(5, 10), device)  # the run that never stopped
    full = full_model_state(model)
    if dist.get_rank() == 0:
        torch.save(full, f"dcp_{parallel}_uninterrupted.pt")
# --8<-- [end:fsdp_train]


# --8<-- [start:fsdp_resume]
def dcp_load(checkpoint_id, parallel="fsdp"):
    device = device_for_rank()
    model, optimizer = build_parallel(device, parallel)
    # The new objects' (sharded) state dicts tell dcp.load which pieces this rank needs.
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}
    dcp.load(state, checkpoint_id=checkpoint_id)  # in place
    set_state_dict(model, optimizer,
                   model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    return model, optimizer


def dcp_resume(root="ckpt_fsdp", parallel="fsdp"):
    model, optimizer = dcp_load(latest_checkpoint(root), parallel)
    train(model, optimizer, range(5, 10), device_for_rank())

    full = full_model_state(model)
    if dist.get_rank() == 0:
        expected = torch.load(f"dcp_{parallel}_uninterrupted.pt", weights_only=True)
        for name, tensor in full.items():
            assert torch.equal(tensor, expected[name]), name  # bitwise
# --8<-- [end:fsdp_resume]


# --8<-- [start:fsdp_run]
if __name__ == "__main__":
    launch(dcp_train, 2)
    launch(dcp_resume, 2)
# --8<-- [end:fsdp_run]


# --8<-- [start:reshard]
def dcp_check_loaded(root="ckpt_fsdp", parallel="fsdp"):
    model, optimizer = dcp_load(latest_checkpoint(root), parallel)
    full = full_model_state(model)
    if dist.get_rank() == 0:
        expected = torch.load(f"dcp_{parallel}_step5.pt", weights_only=True)
        for name, tensor in full.items():
            assert torch.equal(tensor, expected[name]), name
    steps = {int(s["step"]) for s in optimizer.state.values()}
    assert steps == {5}, steps  # Adam's state came back too


if __name__ == "__main__":
    launch(dcp_check_loaded, 1)  # saved by 2 processes, loaded by 1
# --8<-- [end:reshard]


# --8<-- [start:no_process_group]
def load_in_this_process(checkpoint_id):
    """The whole model and optimizer, unwrapped, with no process group at all."""
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}
    dcp.load(state, checkpoint_id=checkpoint_id, no_dist=True)
    set_state_dict(model, optimizer,
                   model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    return model, optimizer


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


if __name__ == "__main__":
    step5, _ = load_in_this_process(latest_checkpoint("ckpt_fsdp"))
    expected = torch.load("dcp_fsdp_step5.pt", weights_only=True)
    assert all(torch.equal(t, expected[k]) for k, t in step5.state_dict().items())
# --8<-- [end:no_process_group]


# --8<-- [start:async_save]
def dcp_train_async(parallel="fsdp"):
    device = device_for_rank()
    model, optimizer = build_parallel(device, parallel)
    train(model, optimizer, range(0, 5), device)

    # A CPU (gloo) group of its own: the writing thread's collectives must not
    # interleave with the training's on the default group. Create it once, on every rank.
    checkpoint_group = dist.new_group(backend="gloo")

    model_sd, optim_sd = get_state_dict(model, optimizer)
    # Returns once the state is copied to CPU memory; a thread writes the files.
    future = dcp.async_save({"model": model_sd, "optimizer": optim_sd},
                            checkpoint_id="ckpt_async/step-00000005",
                            process_group=checkpoint_group)
    train(model, optimizer, range(5, 10), device)  # training goes on meanwhile
    future.result()  # wait before the next save, and before the process ends
    if dist.get_rank() == 0:  # only now is step 5 complete: point `latest` at it
        with open("ckpt_async/latest.tmp", "w") as f:
            f.write("step-00000005")
        os.replace("ckpt_async/latest.tmp", "ckpt_async/latest")


if __name__ == "__main__":
    launch(dcp_train_async, 2)
    from_async, _ = load_in_this_process(latest_checkpoint("ckpt_async"))
    assert same_weights(from_async, step5)  # the state at step 5, not a later one
# --8<-- [end:async_save]


# --8<-- [start:to_torch_save]
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save, torch_save_to_dcp

if __name__ == "__main__":
    dcp_to_torch_save(latest_checkpoint("ckpt_fsdp"), "ckpt_full.pt")  # one process, no group
    checkpoint = torch.load("ckpt_full.pt", weights_only=True)
    print(list(checkpoint["optimizer"]["state"]))
# --8<-- [end:to_torch_save]


# --8<-- [start:load_single_file]
if __name__ == "__main__":
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    model = build_model()
    model.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    # By name: optimizer.load_state_dict would ignore the names and match by position.
    set_optimizer_state_dict(model, optimizer, checkpoint["optimizer"],
                             options=StateDictOptions(full_state_dict=True))

    assert same_weights(model, step5)
    assert all(optimizer.state[p]["step"] == 5 for p in model.parameters())
# --8<-- [end:load_single_file]


# --8<-- [start:from_torch_save]
if __name__ == "__main__":
    torch_save_to_dcp("ckpt_full.pt", "ckpt_again/step-00000005")
    again, _ = load_in_this_process("ckpt_again/step-00000005")
    assert same_weights(again, step5)
# --8<-- [end:from_torch_save]

"""The CUDA part of the checkpoint-cost benchmark (`--gpu`): the cost of `step` on the GPU
after resuming, the GPU-to-CPU copy every save of GPU tensors starts with (pageable and pinned
memory), and for the saves that do not stop training: the pinned staging copy as a share of
the measured pinned copy bandwidth, and the time each save blocks the training loop.
The throughput lost is measured by bench_throughput.py on the device."""

from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path

from bench_common import async_process_save, background_checkpointer, build, process_stager, remove, timed


def count_syncs(fn) -> int:
    """Host-device synchronizations made by fn, as torch.cuda.set_sync_debug_mode sees them."""
    import torch
    torch.cuda.synchronize()
    fn()  # a first call may make one-time synchronizations: count the steady state
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def step_cost(device: str, steps: int) -> list[dict]:
    """Adam step time and syncs per step after resuming: the recommended order (model on the
    device, then optimizer, then load: `step` stays on the CPU) vs the classic loop that moves
    every state tensor, `step` included, to the device."""
    import torch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    layers, width = 24, 1024
    src, src_opt, _ = build(layers * width * width / 1e6, layers=layers)
    saved = {"model": src.state_dict(), "optimizer": src_opt.state_dict()}
    rows = []
    for variant in ("recommended", "classic_loop", "fused"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)]).to(device)
        model.load_state_dict(saved["model"])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=(variant == "fused") or None)
        optimizer.load_state_dict(saved["optimizer"])
        if variant == "fused":
            # The saved param_groups say fused=None and win over the constructor: set it
            # again, and reload so that `step` is cast as the fused kernel wants it.
            for group in optimizer.param_groups:
                group["fused"] = True
            optimizer.load_state_dict(optimizer.state_dict())
        if variant == "classic_loop":
            for state in optimizer.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v):
                        state[k] = v.to(device)
        for p in model.parameters():
            p.grad = torch.full_like(p, 1e-3)
        step_device = str(next(iter(optimizer.state.values()))["step"].device)
        for _ in range(3):
            optimizer.step()
        sync()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            optimizer.step()
            sync()
            times.append(time.perf_counter() - t0)
        syncs = count_syncs(optimizer.step) if device.startswith("cuda") else None
        rows.append({"variant": variant, "step_device": step_device, "param_tensors": 2 * layers,
                     "params": sum(p.numel() for p in model.parameters()),
                     "step_median_ms": statistics.median(times) * 1e3, "syncs_per_step": syncs})
        del model, optimizer
    return rows


def copy_cost(device: str, sizes: list[float], repeats: int) -> list[dict]:
    """Copying the model and Adam state from the device to CPU memory, as a save must."""
    import torch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    for m in sizes:
        model, optimizer, _ = build(m)
        model.to(device)
        optimizer.load_state_dict(optimizer.state_dict())  # re-cast the state to the device
        tensors = [t for t in (list(model.state_dict().values())
                               + [v for s in optimizer.state.values() for v in s.values()])
                   if torch.is_tensor(t) and t.device.type == device.split(":")[0]]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        pin = device.startswith("cuda")

        def buffers(pinned):
            out = [torch.empty(t.shape, dtype=t.dtype, pin_memory=pin and pinned) for t in tensors]
            for b in out:
                b.zero_()  # touch every page: no page fault left for the copy
            return out

        pageable_buffers, pinned_buffers = buffers(False), buffers(True)

        def copy_into(targets):
            for t, d in zip(tensors, targets):
                d.copy_(t, non_blocking=True)  # blocking anyway into pageable memory
            sync()

        # Like with like: both kinds of memory into buffers allocated (and touched) before the
        # clock starts, and both allocated inside the timed region, as a first save does.
        variants = {
            "pageable_s": lambda: copy_into(pageable_buffers),
            "pinned_s": lambda: copy_into(pinned_buffers),
            "pageable_alloc_s": lambda: copy_into([torch.empty(t.shape, dtype=t.dtype) for t in tensors]),
            "pinned_alloc_s": lambda: copy_into([torch.empty(t.shape, dtype=t.dtype, pin_memory=pin)
                                                 for t in tensors]),
        }
        row = {"params": sum(p.numel() for p in model.parameters()), "bytes": nbytes}
        for key, fn in variants.items():
            fn()  # warm-up
            row[key] = statistics.median(timed(fn) for _ in range(repeats))
            row[key.replace("_s", "_gb_s")] = nbytes / row[key] / 1e9
        rows.append(row)
        del model, optimizer, tensors, pageable_buffers, pinned_buffers
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def staging_cost(device: str, sizes: list[float], repeats: int, pinned_gb_s: dict, workdir: Path) -> list[dict]:
    """Per size: dcp's pinned stager (kept between saves) and the site's background save: the
    time each save blocks the caller, and the staging copy's speed as a share of the pinned
    copy bandwidth measured by copy_cost (`pinned_gb_s`, by parameter count)."""
    import torch
    from torch.distributed.checkpoint.state_dict import get_state_dict

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    Background = background_checkpointer()
    rows = []
    for m in sizes:
        model, optimizer, _ = build(m)
        model.to(device)
        optimizer.load_state_dict(optimizer.state_dict())  # re-cast the state to the device
        n_params = sum(p.numel() for p in model.parameters())
        nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + sum(
            v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values())
        row = {"params": n_params, "bytes": nbytes}

        stager = process_stager(pinned=cuda)
        try:
            msd, osd = get_state_dict(model, optimizer)
            stager.stage({"model": msd, "optimizer": osd})  # first call allocates the buffers
            stage_s = []
            for _ in range(repeats):
                msd, osd = get_state_dict(model, optimizer)
                sync()
                stage_s.append(timed(lambda: (stager.stage({"model": msd, "optimizer": osd}), sync())))
            row["stage_s"] = statistics.median(stage_s)
            row["stage_gb_s"] = nbytes / row["stage_s"] / 1e9
            if n_params in pinned_gb_s:
                row["stage_share_of_pinned"] = row["stage_gb_s"] / pinned_gb_s[n_params]
            blocked = []
            for r in range(repeats):
                p = workdir / f"gpu-dcp-{r}"
                t0 = time.perf_counter()
                msd, osd = get_state_dict(model, optimizer)
                future = async_process_save({"model": msd, "optimizer": osd}, p, stager)
                blocked.append(time.perf_counter() - t0)
                future.result()
                remove(p)
            row["dcp_async_process_blocked_s"] = statistics.median(blocked)
        finally:
            stager.close()

        if Background is not None:
            d = workdir / "gpu-background"
            saver = Background(d, keep=1, checksum=True)
            try:
                blocked = []
                for r in range(repeats + 1):
                    t0 = time.perf_counter()
                    saver.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, r)
                    blocked.append(time.perf_counter() - t0)
                    saver.wait()
                row["background_blocked_s"] = statistics.median(blocked[1:])  # the first allocates
            finally:
                saver.close()
            remove(d)
        rows.append(row)
        del model, optimizer
        if cuda:
            torch.cuda.empty_cache()
    return rows

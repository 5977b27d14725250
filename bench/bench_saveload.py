"""Save and load times of the benchmark's model with Adam's state, every method in turn, against
the disk's own limit (a raw write with fsync, a cold raw read of the same number of bytes).

A save records two times: *blocked*, until the call gives the training loop back, and
*total*, until the files are on the disk (fsync'ed). For a synchronous save they are the same.
A load starts cold (the files dropped from the page cache) and ends with the state in a model
and an Adam optimizer built beforehand, every 4 KiB page of the weights and of Adam's state
written once, as the first training step writes them (so that a load that leaves tensors
mapped from the file pays its copy-on-write here, not in the first step).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from pathlib import Path

from bench_common import (async_process_save, background_checkpointer, build, drop_cache, fsync_path,
                          process_stager, remove, size_of, tensor_bytes, timed)
from bench_measure import LOAD_METHODS, SAVE_METHODS

SAVES, LOADS = tuple(SAVE_METHODS), tuple(LOAD_METHODS)


def bench_size(params_m: float, repeats: int, workdir: Path, log) -> dict:
    import torch
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import load_file, save_file
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    import checkpoint_files

    Background = background_checkpointer()
    model, optimizer, width = build(params_m)
    target_model, target_opt, _ = build(params_m, seed=1)  # loads go into these
    n_params = sum(p.numel() for p in model.parameters())
    weights_b = tensor_bytes(model.state_dict())
    optim_b = tensor_bytes(optimizer.state_dict()["state"])
    total_b = weights_b + optim_b
    log(f"{n_params / 1e6:.1f}M params (width {width}): weights {weights_b / 1e9:.3f} GB, "
        f"Adam state {optim_b / 1e9:.3f} GB")

    raw_src = torch.randint(0, 255, (total_b,), dtype=torch.uint8).numpy()
    raw_dst = bytearray(total_b)
    chunk = 64 << 20

    def raw_write(path):
        with open(path, "wb", buffering=0) as f:
            view = memoryview(raw_src)
            for i in range(0, total_b, chunk):
                f.write(view[i:i + chunk])
            os.fsync(f.fileno())

    def raw_read(path):
        with open(path, "rb", buffering=0) as f:
            view = memoryview(raw_dst)
            pos = 0
            while pos < total_b:
                n = f.readinto(view[pos:pos + chunk])
                if not n:
                    break
                pos += n

    def checkpoint():
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    # The floor of a save that does not stop training: one copy of every tensor of the state
    # into memory allocated (and touched) beforehand, as a stager kept between saves does.
    state_tensors = [t for t in list(model.state_dict().values()) + [
        v for s in optimizer.state.values() for v in s.values()] if t.numel() > 1]
    copies = [torch.zeros_like(t) for t in state_tensors]

    def memory_copy():
        for c, t in zip(copies, state_tensors):
            c.copy_(t)

    def touch():
        # Write one value per 4 KiB page of every weight and state tensor (times one: no
        # change), as the first optimizer step does: a load is complete when this is done.
        with torch.no_grad():
            for t in [p for p in target_model.parameters()] + [
                    v for s in target_opt.state.values() for v in s.values() if v.numel() > 1]:
                t.view(-1)[::1024].mul_(1)

    def load_into(ck):
        target_model.load_state_dict(ck["model"])
        target_opt.load_state_dict(ck["optimizer"])
        touch()

    samples = {k: {"save_s": [], "blocked_s": []} for k in SAVES}
    for k in LOADS:
        samples.setdefault(k, {}).setdefault("load_s", [])
    file_bytes: dict[str, int] = {}

    def sync_save(key, fn, path):
        t = timed(fn)
        samples[key]["save_s"].append(t)
        samples[key]["blocked_s"].append(t)
        file_bytes[key] = size_of(path)

    def cold_load(key, fn, *paths):
        for p in paths:
            drop_cache(p)
        samples[key]["load_s"].append(timed(fn))

    # The writer processes start, and the staging memory is allocated, before the clock: a
    # training run pays that once, at its first save.
    stager = process_stager()
    async_process_save({"w": torch.zeros(1)}, workdir / "warm-up", stager).result()
    remove(workdir / "warm-up")
    saver = None if Background is None else Background(workdir / "background", keep=1, checksum=True)
    if saver is not None:
        saver.save(checkpoint(), 0)
        saver.wait()
    try:
        for r in range(repeats):
            # raw bytes: the disk's limit for this many bytes; sha256: the CPU's for hashing them
            p = workdir / "raw.bin"
            sync_save("raw", lambda: raw_write(p), p)
            cold_load("raw", lambda: raw_read(p), p)
            samples["sha256"]["load_s"].append(timed(lambda: hashlib.sha256(raw_dst).hexdigest()))
            t = timed(memory_copy)
            samples["memory_copy"]["save_s"].append(t)
            samples["memory_copy"]["blocked_s"].append(t)
            remove(p)

            # torch.save / torch.load, then the same file with mmap=True
            p = workdir / "checkpoint.pt"
            sync_save("torch_save", lambda: (torch.save(checkpoint(), p), fsync_path(p)), p)
            file_bytes["torch_load_mmap"] = file_bytes["torch_save"]
            cold_load("torch_save", lambda: load_into(torch.load(p, map_location="cpu", weights_only=True)), p)
            cold_load("torch_load_mmap", lambda: load_into(
                torch.load(p, map_location="cpu", weights_only=True, mmap=True)), p)
            remove(p)

            # the site's library: save_checkpoint (sha256 file, rotation), then its loads
            d = workdir / "library"
            sync_save("save_checkpoint", lambda: checkpoint_files.save_checkpoint(
                checkpoint(), d, r, keep=1, log=lambda *a: None), d)
            p = d / checkpoint_files.checkpoint_name(r)
            cold_load("load_checkpoint", lambda: load_into(checkpoint_files.load_checkpoint(str(p))), p)
            cold_load("fast_load", lambda: load_into(checkpoint_files.load_checkpoint(str(p), fast=True)), p)
            sidecar = Path(str(p) + ".sha256")
            sidecar.rename(workdir / "aside.sha256")  # as saved with checksum=False
            cold_load("fast_load_unchecked", lambda: load_into(checkpoint_files.load_checkpoint(str(p), fast=True)), p)

            remove(d)
            remove(workdir / "aside.sha256")

            # safetensors for the weights, torch.save for the optimizer state (a nested dict)
            pw, po = workdir / "model.safetensors", workdir / "optimizer.pt"

            def st_save():
                save_file(model.state_dict(), pw)
                torch.save(optimizer.state_dict(), po)
                fsync_path(pw)
                fsync_path(po)

            def st_load():
                target_model.load_state_dict(load_file(pw))
                target_opt.load_state_dict(torch.load(po, map_location="cpu", weights_only=True))
                touch()

            samples["safetensors"]["save_s"].append(t := timed(st_save))
            samples["safetensors"]["blocked_s"].append(t)
            file_bytes["safetensors"] = size_of(pw) + size_of(po)
            cold_load("safetensors", st_load, pw, po)
            remove(pw)
            remove(po)

            # torch.distributed.checkpoint, one process
            p = workdir / "dcp"

            def dcp_save():
                msd, osd = get_state_dict(model, optimizer)
                dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=p)
                fsync_path(p)

            def dcp_load():
                msd, osd = get_state_dict(target_model, target_opt)
                sd = {"model": msd, "optimizer": osd}
                dcp.load(sd, checkpoint_id=p)
                set_state_dict(target_model, target_opt, model_state_dict=sd["model"],
                               optim_state_dict=sd["optimizer"])
                touch()

            sync_save("dcp", dcp_save, p)
            cold_load("dcp", dcp_load, p)
            remove(p)

            # async_save: the caller is blocked until the state is staged; a thread (default)
            # or a writer process (a stager kept between saves) writes it
            for key in ("dcp_async", "dcp_async_process"):
                p = workdir / key
                t0 = time.perf_counter()
                msd, osd = get_state_dict(model, optimizer)
                state = {"model": msd, "optimizer": osd}
                future = (dcp.async_save(state, checkpoint_id=p) if key == "dcp_async"
                          else async_process_save(state, p, stager))
                blocked = time.perf_counter() - t0
                future.result()
                fsync_path(p)
                samples[key]["blocked_s"].append(blocked)
                samples[key]["save_s"].append(time.perf_counter() - t0)
                file_bytes[key] = size_of(p)
                remove(p)

            # the site's background save: returns once the state is staged
            if saver is not None:
                t0 = time.perf_counter()
                saver.save(checkpoint(), r + 1)
                blocked = time.perf_counter() - t0
                saver.wait()
                samples["background"]["blocked_s"].append(blocked)
                samples["background"]["save_s"].append(time.perf_counter() - t0)
                file_bytes["background"] = size_of(workdir / "background" / checkpoint_files.checkpoint_name(r + 1))

            log(f"  run {r + 1}/{repeats}: save " + ", ".join(
                f"{k} {v['blocked_s'][-1]:.2f}/{v['save_s'][-1]:.2f}s" for k, v in samples.items()
                if v.get("save_s")) + "; load " + ", ".join(
                f"{k} {v['load_s'][-1]:.2f}s" for k, v in samples.items() if v.get("load_s")))
    finally:
        stager.close()
        if saver is not None:
            saver.close()
        remove(workdir / "background")

    del raw_src, raw_dst, copies
    methods = {}
    for key, s in samples.items():
        entry = {"file_bytes": file_bytes.get(key)}
        for name, values in s.items():
            if values:
                entry[name] = values
                entry[name.replace("_s", "_median_s")] = statistics.median(values)
        methods[key] = entry
    return {"params": n_params, "layers": 24, "width": width, "param_tensors": 48,
            "weights_bytes": weights_b, "optimizer_bytes": optim_b, "total_bytes": total_b,
            "methods": methods}

"""The measurements behind docs/concepts/checkpoint-cost.md, one run: per model size, the save
and load methods against the disk's own limit (bench_saveload.py) and the training throughput
that a checkpoint every N steps costs (bench_throughput.py); with `--gpu`, the CUDA part
(bench_gpu.py). Results are plain dicts, written as JSON by checkpoint_bench.py; nothing here
renders or plots. Helpers shared by the parts are in bench_common.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_common import init_single_process_group, machine, versions

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "docs" / "assets" / "bench"
CPU_JSON, GPU_JSON = "cpu.json", "gpu.json"
SCHEMA = 2  # 2: blocked times of every save, the library's loads, training throughput

# Method keys, in table order. Labels are code names: the tables serve both languages
# (bench_render.TABLE_WORDS translates the few with words).
SAVE_METHODS = {
    "raw": "raw bytes (write+fsync)",
    "memory_copy": "memory copy of the state (no disk)",
    "torch_save": "`torch.save` + fsync",
    "save_checkpoint": "`save_checkpoint` (sha256, `latest`)",
    "safetensors": "safetensors + `torch.save` (optimizer)",
    "dcp": "`dcp.save`",
    "dcp_async": "`dcp.async_save` (thread)",
    "dcp_async_process": "`dcp.async_save` (process, kept stager)",
    "background": "`BackgroundCheckpointer.save`",
}
LOAD_METHODS = {
    "raw": "raw bytes (cold read)",
    "torch_save": "`torch.load`",
    "torch_load_mmap": "`torch.load(mmap=True)`",
    "safetensors": "safetensors + `torch.load` (optimizer)",
    "dcp": "`dcp.load`",
    "load_checkpoint": "`load_checkpoint` (sha256)",
    "fast_load": "`load_checkpoint(fast=True)` (sha256)",
    "fast_load_unchecked": "`load_checkpoint(fast=True)` (no sha256 file)",
    "sha256": "sha256 of the bytes in memory",
}
TRAIN_METHODS = {k: SAVE_METHODS[k] for k in ("save_checkpoint", "dcp_async_process", "background")}
METHODS = {**SAVE_METHODS, **{k: v for k, v in LOAD_METHODS.items() if k not in SAVE_METHODS}}
RECOMMENDED_SAVE, RECOMMENDED_LOAD = "background", "fast_load"  # the page's recipes
GOALS = {"blocked_over_sync": 0.05, "lost_per_minute": 0.01, "load_over_raw": 1.2}


def run_cpu(args) -> dict:
    import torch

    from bench_saveload import bench_size
    from bench_throughput import throughput

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    workdir = Path(tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.dir))
    log = print
    started = time.perf_counter()
    init_single_process_group()
    try:
        mach = machine(workdir)
        results = []
        for m in args.sizes:
            row = bench_size(m, args.repeats, workdir, log)
            if args.train_steps:
                row["train"] = throughput(m, args.train_steps, args.every, args.batch, workdir, log)
            results.append(row)
    finally:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "schema": SCHEMA,
        "kind": "cpu",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "machine": mach,
        "versions": versions(),
        "settings": {"repeats": args.repeats, "sizes_m": args.sizes, "statistic": "median",
                     "threads": torch.get_num_threads(),
                     "train_steps": args.train_steps, "every": args.every, "batch": args.batch,
                     "save": "state dicts to files, fsync'ed; blocked: until the call returns",
                     "load": "files dropped from the page cache, loaded into a model and Adam, "
                             "one value per 4 KiB page of the weights and the state written"},
        "duration_s": round(time.perf_counter() - started, 1),
        "results": results,
    }


def run_gpu(args, device: str) -> dict:
    import torch

    from bench_gpu import copy_cost, staging_cost, step_cost
    from bench_throughput import throughput

    started = time.perf_counter()
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu (smoke test)"
    steps = 20 if args.quick else 50
    sizes = [10, 100] if args.quick else [10, 30, 100]
    repeats = 3 if args.quick else 5
    workdir = Path(tempfile.mkdtemp(prefix="ckpt-bench-gpu-", dir=args.dir))
    init_single_process_group("cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo")
    try:
        copy = copy_cost(device, sizes, repeats)
        pinned = {r["params"]: r["pinned_gb_s"] for r in copy}
        out = {
            "schema": SCHEMA,
            "kind": "gpu",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "machine": machine(workdir) | {"gpu": name},
            "versions": versions(),
            "settings": {"steps": steps, "sizes_m": sizes, "repeats": repeats, "statistic": "median",
                         "train_steps": args.train_steps, "every": args.every, "batch": args.batch},
            "step": step_cost(device, steps),
            "copy": copy,
            "staging": staging_cost(device, sizes, repeats, pinned, workdir),
            "train": [throughput(m, args.train_steps, args.every, args.batch, workdir, print, device)
                      for m in sizes] if args.train_steps else [],
        }
    finally:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(workdir, ignore_errors=True)
    out["duration_s"] = round(time.perf_counter() - started, 1)
    return out

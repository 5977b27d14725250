"""What checkpointing costs: save and load times of a model with Adam's state, measured.

A benchmark, not a test. For MLPs of about 10M, 30M and 100M parameters with Adam's state
it times, in one run and against the disk's own limit (a raw write with fsync and a cold
read of the same number of bytes):

- torch.save / torch.load, and torch.load(mmap=True)
- safetensors for the weights + torch.save for the optimizer state
- torch.distributed.checkpoint save / load (one process, world size 1, gloo)
- torch.distributed.checkpoint.async_save: the time the caller is blocked vs the total

Every save ends with the files fsync'ed; every load starts cold (the files are dropped from
the page cache with posix_fadvise) and ends with the state loaded into a model and an Adam
optimizer. Each figure is the median of several runs; the methods take turns in every run.

    python bench/checkpoint_bench.py                # CPU: JSON + plots + tables for the docs
    python bench/checkpoint_bench.py --gpu --quick  # CUDA: step-on-GPU cost, GPU-to-CPU copies
    python bench/checkpoint_bench.py --render       # rewrite tables and plots from the JSON

Outputs: docs/assets/bench/cpu.json (gpu.json), docs/assets/bench/*.png, and the tables that
docs/concepts/checkpoint-cost.md embeds: snippets/concepts/checkpoint_cost_*.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "docs" / "assets" / "bench"
SNIPPETS = ROOT / "snippets" / "concepts"
CPU_JSON, GPU_JSON = "cpu.json", "gpu.json"
SCHEMA = 1

# Method keys, in table order. Labels are code names: the tables serve both languages.
METHODS = {
    "raw": "raw bytes (write+fsync / read)",
    "torch_save": "`torch.save` / `torch.load`",
    "torch_load_mmap": "`torch.load(mmap=True)`",
    "safetensors": "safetensors + `torch.save` (optimizer)",
    "dcp": "`dcp.save` / `dcp.load`",
    "dcp_async": "`dcp.async_save` (total)",
}


# ---------------------------------------------------------------------------- the machine
def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "system": platform.platform()}


def versions() -> dict:
    import torch
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("numpy", "safetensors"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
    return out


# ---------------------------------------------------------------------------- file helpers
def fsync_path(path: Path) -> None:
    """fsync a file, or every file of a directory and the directory itself."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(path if path.is_dir() else path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_cache(path: Path) -> None:
    """Evict the (already fsync'ed) files from the page cache: the next read comes from disk."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------- the workload
def build(params_m: float, layers: int = 24, seed: int = 0):
    """An MLP of `layers` square Linear layers with about params_m million parameters, and
    Adam with its state filled by one step."""
    import torch
    width = max(64, round((params_m * 1e6 / layers) ** 0.5 / 64) * 64)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    return model, optimizer, width


def tensor_bytes(obj) -> int:
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def init_single_process_group():
    import torch.distributed as dist
    if dist.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


# ---------------------------------------------------------------------------- CPU benchmark
def bench_size(params_m: float, repeats: int, workdir: Path, log) -> dict:
    import torch
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import load_file, save_file
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

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

    def touch_optimizer_state():
        # optimizer.load_state_dict keeps the loaded tensors (no copy); after
        # torch.load(mmap=True) they stay backed by the file and are read on first use.
        # Reading one float per 4 KiB page makes every load complete before the clock stops.
        for state in target_opt.state.values():
            for t in state.values():
                t.reshape(-1)[::1024].sum()

    def load_into(ck):
        target_model.load_state_dict(ck["model"])
        target_opt.load_state_dict(ck["optimizer"])
        touch_optimizer_state()

    samples: dict[str, dict[str, list[float]]] = {k: {"save_s": [], "load_s": []} for k in METHODS}
    samples["dcp_async"]["blocked_s"] = []
    file_bytes: dict[str, int] = {}

    for r in range(repeats):
        # raw bytes: the disk's limit for this many bytes
        p = workdir / "raw.bin"
        samples["raw"]["save_s"].append(timed(lambda: raw_write(p)))
        drop_cache(p)
        samples["raw"]["load_s"].append(timed(lambda: raw_read(p)))
        file_bytes["raw"] = size_of(p)
        remove(p)

        # torch.save / torch.load, then the same file with mmap=True
        p = workdir / "checkpoint.pt"
        samples["torch_save"]["save_s"].append(timed(lambda: (torch.save(checkpoint(), p), fsync_path(p))))
        file_bytes["torch_save"] = file_bytes["torch_load_mmap"] = size_of(p)
        drop_cache(p)
        samples["torch_save"]["load_s"].append(
            timed(lambda: load_into(torch.load(p, map_location="cpu", weights_only=True))))
        drop_cache(p)
        samples["torch_load_mmap"]["load_s"].append(
            timed(lambda: load_into(torch.load(p, map_location="cpu", weights_only=True, mmap=True))))
        remove(p)

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
            touch_optimizer_state()

        samples["safetensors"]["save_s"].append(timed(st_save))
        file_bytes["safetensors"] = size_of(pw) + size_of(po)
        drop_cache(pw)
        drop_cache(po)
        samples["safetensors"]["load_s"].append(timed(st_load))
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
            touch_optimizer_state()

        samples["dcp"]["save_s"].append(timed(dcp_save))
        file_bytes["dcp"] = size_of(p)
        drop_cache(p)
        samples["dcp"]["load_s"].append(timed(dcp_load))
        remove(p)

        # async_save: the caller is blocked until the state is staged; a thread writes it
        p = workdir / "dcp_async"
        t0 = time.perf_counter()
        msd, osd = get_state_dict(model, optimizer)
        future = dcp.async_save({"model": msd, "optimizer": osd}, checkpoint_id=p)
        blocked = time.perf_counter() - t0
        future.result()
        fsync_path(p)
        samples["dcp_async"]["blocked_s"].append(blocked)
        samples["dcp_async"]["save_s"].append(time.perf_counter() - t0)
        file_bytes["dcp_async"] = size_of(p)
        remove(p)

        log(f"  run {r + 1}/{repeats}: " + ", ".join(
            f"{k} {v['save_s'][-1]:.2f}/{v['load_s'][-1]:.2f}s" if v["load_s"] else f"{k} {v['save_s'][-1]:.2f}s"
            for k, v in samples.items() if v["save_s"]))

    del raw_src, raw_dst
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


def run_cpu(args) -> dict:
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    workdir = Path(tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.dir))
    log = print
    started = time.perf_counter()
    init_single_process_group()
    try:
        disk = shutil.disk_usage(workdir)
        results = [bench_size(m, args.repeats, workdir, log) for m in args.sizes]
    finally:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "schema": SCHEMA,
        "kind": "cpu",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine() | {"disk_free_bytes": disk.free, "disk_total_bytes": disk.total},
        "versions": versions(),
        "settings": {"repeats": args.repeats, "sizes_m": args.sizes, "statistic": "median",
                     "threads": torch.get_num_threads(),
                     "save": "state dicts to files, fsync'ed",
                     "load": "files dropped from the page cache, loaded into a model and Adam, "
                             "every page of the optimizer state read"},
        "duration_s": round(time.perf_counter() - started, 1),
        "results": results,
    }


# ---------------------------------------------------------------------------- GPU benchmark
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


def run_gpu(args, device: str) -> dict:
    import torch
    started = time.perf_counter()
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu (smoke test)"
    steps = 20 if args.quick else 50
    sizes = [10, 100] if args.quick else [10, 30, 100]
    repeats = 3 if args.quick else 5
    out = {
        "schema": SCHEMA,
        "kind": "gpu",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine() | {"gpu": name},
        "versions": versions(),
        "settings": {"steps": steps, "sizes_m": sizes, "repeats": repeats, "statistic": "median"},
        "step": step_cost(device, steps),
        "copy": copy_cost(device, sizes, repeats),
    }
    out["duration_s"] = round(time.perf_counter() - started, 1)
    return out


# ---------------------------------------------------------------------------- rendering
def _fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _ratio(x: float | None, raw: float) -> str:
    return "—" if x is None else f"{x / raw:.2f}×"


def summary(cpu: dict) -> dict:
    """The figures the page's prose refers to, derived from the JSON (tests check these)."""
    big = max(cpu["results"], key=lambda r: r["params"])
    m = big["methods"]
    raw_w, raw_r = m["raw"]["save_median_s"], m["raw"]["load_median_s"]
    formats = ("torch_save", "safetensors", "dcp")
    return {
        "params": big["params"],
        "adam_over_weights": big["optimizer_bytes"] / big["weights_bytes"],
        "total_gb": big["total_bytes"] / 1e9,
        "raw_write_gb_s": big["total_bytes"] / raw_w / 1e9,
        "raw_read_gb_s": big["total_bytes"] / raw_r / 1e9,
        "save_over_raw_max": max(m[k]["save_median_s"] / raw_w for k in formats),
        "save_over_raw_min": min(m[k]["save_median_s"] / raw_w for k in formats),
        "load_over_raw_max": max(m[k]["load_median_s"] / raw_r for k in formats + ("torch_load_mmap",)),
        "async_blocked_over_total": m["dcp_async"]["blocked_median_s"] / m["dcp_async"]["save_median_s"],
        "async_blocked_s": m["dcp_async"]["blocked_median_s"],
        "async_total_s": m["dcp_async"]["save_median_s"],
    }


def render_cpu(cpu: dict) -> str:
    mach, ver, st = cpu["machine"], cpu["versions"], cpu["settings"]
    lines = [
        "<!-- Generated by bench/checkpoint_bench.py from docs/assets/bench/cpu.json. Do not edit. -->",
        "",
        f"`{cpu['date']}` · {mach['cpu']}, {mach['cores']} cores, "
        f"{mach['memory_bytes'] / 2**30:.0f} GiB RAM, {mach['disk_free_bytes'] / 1e9:.0f} GB disk free · "
        f"torch `{ver['torch']}`, safetensors `{ver.get('safetensors', '—')}`, Python `{ver['python']}` · "
        f"median of {st['repeats']} runs · {cpu['duration_s']:.0f} s",
        "",
        "| params | GB | Adam ÷ weights | method | save s | save ÷ raw | load s | load ÷ raw |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in cpu["results"]:
        m = r["methods"]
        raw_w, raw_r = m["raw"]["save_median_s"], m["raw"]["load_median_s"]
        first = True
        for key, label in METHODS.items():
            e = m[key]
            save = e.get("save_median_s")
            load = e.get("load_median_s")
            head = (f"{r['params'] / 1e6:.1f}M | {r['total_bytes'] / 1e9:.2f} | "
                    f"{r['optimizer_bytes'] / r['weights_bytes']:.2f}" if first else " | | ")
            if key == "torch_load_mmap":
                save = None
            lines.append(f"| {head} | {label} | {_fmt_s(save)} | {_ratio(save, raw_w)} | "
                         f"{_fmt_s(load)} | {_ratio(load, raw_r)} |")
            first = False
    lines += ["", "| params | `async_save` blocked s | total s | blocked ÷ total |",
              "| ---: | ---: | ---: | ---: |"]
    for r in cpu["results"]:
        a = r["methods"]["dcp_async"]
        lines.append(f"| {r['params'] / 1e6:.1f}M | {a['blocked_median_s']:.2f} | {a['save_median_s']:.2f} | "
                     f"{a['blocked_median_s'] / a['save_median_s']:.2f} |")
    s = summary(cpu)
    lines += ["", "| {:.1f}M params | value |".format(s["params"] / 1e6), "| --- | ---: |",
              f"| Adam state ÷ weights | {s['adam_over_weights']:.2f} |",
              f"| checkpoint (weights + Adam) | {s['total_gb']:.2f} GB |",
              f"| raw write+fsync / cold read | {s['raw_write_gb_s']:.2f} / {s['raw_read_gb_s']:.2f} GB/s |",
              f"| save ÷ raw write (torch.save, safetensors, dcp) | "
              f"{s['save_over_raw_min']:.2f}× – {s['save_over_raw_max']:.2f}× |",
              f"| `async_save`: blocked ÷ total | {s['async_blocked_over_total']:.2f} |", ""]
    return "\n".join(lines)


def render_gpu(gpu: dict | None) -> str:
    head = "<!-- Generated by bench/checkpoint_bench.py from docs/assets/bench/gpu.json. Do not edit. -->"
    if gpu is None:
        return "\n".join([head, "", "| CUDA | |", "| --- | --- |",
                          "| — | `python bench/checkpoint_bench.py --gpu --quick` |", ""])
    ver = gpu["versions"]
    lines = [head, "",
             f"`{gpu['date']}` · {gpu['machine']['gpu']} · torch `{ver['torch']}`, CUDA `{ver.get('cuda')}` · "
             f"median of {gpu['settings']['steps']} steps · {gpu['duration_s']:.0f} s", "",
             "| after resume | `step` on | param tensors | `optimizer.step()` ms | syncs per step |",
             "| --- | --- | ---: | ---: | ---: |"]
    names = {"recommended": "model → optimizer → `load_state_dict`",
             "classic_loop": "+ loop moving every state tensor to cuda",
             "fused": "`Adam(fused=True)`"}
    for r in gpu["step"]:
        if r["variant"] == "fused" and not r["step_device"].startswith("cuda"):
            # Measured before the benchmark set fused=True again after loading.
            names["fused"] = ("`Adam(fused=True)` + `load_state_dict`: the saved `fused=None` won, "
                              "so not fused ([why](../troubleshooting/errors.md#fused-flag))")
        lines.append(f"| {names[r['variant']]} | `{r['step_device']}` | {r['param_tensors']} | "
                     f"{r['step_median_ms']:.2f} | {r['syncs_per_step']} |")
    if "pageable_alloc_s" in gpu["copy"][0]:
        lines += ["", "GPU → CPU copy, seconds (GB/s): into buffers allocated before, and allocated "
                  "during the copy (as a first save does)", "",
                  "| params | GB | pageable | pinned | pageable + allocation | pinned + allocation |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in gpu["copy"]:
            cells = " | ".join(f"{r[k]:.3f} ({r[k.replace('_s', '_gb_s')]:.1f})" for k in
                               ("pageable_s", "pinned_s", "pageable_alloc_s", "pinned_alloc_s"))
            lines.append(f"| {r['params'] / 1e6:.1f}M | {r['bytes'] / 1e9:.2f} | {cells} |")
    else:  # results from before the like-with-like measurement
        lines += ["", "Measured before the copies were compared like with like: pageable includes "
                  "allocating fresh memory (page faults), pinned does not include its allocation.", "",
                  "| params | GB | GPU → CPU s (pageable) | GB/s | GPU → CPU s (pinned) | GB/s |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in gpu["copy"]:
            lines.append(f"| {r['params'] / 1e6:.1f}M | {r['bytes'] / 1e9:.2f} | {r['pageable_s']:.3f} | "
                         f"{r['pageable_gb_s']:.1f} | {r['pinned_s']:.3f} | {r['pinned_gb_s']:.1f} |")
    lines.append("")
    return "\n".join(lines)


def plot_cpu(cpu: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mach, ver = cpu["machine"], cpu["versions"]
    stamp = (f"{cpu['date']} · torch {ver['torch']} · {mach['cpu']}, {mach['cores']} cores · "
             f"median of {cpu['settings']['repeats']} runs")
    xs = [r["params"] / 1e6 for r in cpu["results"]]
    styles = {"raw": dict(color="black", linestyle="--", marker="o"),
              "torch_save": dict(color="tab:blue", marker="s"),
              "torch_load_mmap": dict(color="tab:cyan", marker="v"),
              "safetensors": dict(color="tab:green", marker="^"),
              "dcp": dict(color="tab:red", marker="D"),
              "dcp_async": dict(color="tab:purple", marker="x")}
    labels = {k: v.replace("`", "") for k, v in METHODS.items()}
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90, sharey=False)
    for ax, op, title in ((axes[0], "save", "save (fsync'ed)"), (axes[1], "load", "load (cold, into model + Adam)")):
        for key, style in styles.items():
            ys = [r["methods"][key].get(f"{op}_median_s") for r in cpu["results"]]
            if key == "torch_load_mmap" and op == "save" or all(y is None for y in ys):
                continue
            ax.plot(xs, ys, label=labels[key], linewidth=1.5, markersize=5, **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("parameters (millions), Adam state included")
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(stamp, fontsize=7.5)
    fig.tight_layout()
    paths.append(out / "save_load.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    blocked = [r["methods"]["dcp_async"]["blocked_median_s"] for r in cpu["results"]]
    total = [r["methods"]["dcp_async"]["save_median_s"] for r in cpu["results"]]
    sync = [r["methods"]["dcp"]["save_median_s"] for r in cpu["results"]]
    pos = range(len(xs))
    ax.bar([p - 0.2 for p in pos], sync, width=0.4, color="tab:red", label="dcp.save (blocked throughout)")
    ax.bar([p + 0.2 for p in pos], total, width=0.4, color="#d9c6ea", label="dcp.async_save: total")
    ax.bar([p + 0.2 for p in pos], blocked, width=0.4, color="tab:purple", label="dcp.async_save: blocked")
    ax.set_xticks(list(pos), [f"{x:.0f}M" for x in xs])
    ax.set_xlabel("parameters, Adam state included")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(stamp, fontsize=6.5)
    fig.tight_layout()
    paths.append(out / "async_save.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    for p in list(paths):
        _shrink_png(p)
        # The Japanese page's copy: mkdocs-static-i18n (suffix structure, no fallback to the
        # default language) publishes to the Japanese site only files with a .ja suffix.
        paths.append(p.with_suffix(".ja.png"))
        shutil.copyfile(p, paths[-1])
    return paths


def _shrink_png(path: Path) -> None:
    """A palette PNG: the plots have few colours, and the page loads faster."""
    try:
        from PIL import Image
    except ImportError:
        return
    img = Image.open(path).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)


def render_all(out: Path, snippets: Path) -> list[Path]:
    written = []
    cpu_path, gpu_path = out / CPU_JSON, out / GPU_JSON
    gpu = json.loads(gpu_path.read_text()) if gpu_path.exists() else None
    snippets.mkdir(parents=True, exist_ok=True)
    if cpu_path.exists():
        cpu = json.loads(cpu_path.read_text())
        (snippets / "checkpoint_cost_cpu.md").write_text(render_cpu(cpu), encoding="utf-8")
        written += [snippets / "checkpoint_cost_cpu.md"] + plot_cpu(cpu, out)
    (snippets / "checkpoint_cost_gpu.md").write_text(render_gpu(gpu), encoding="utf-8")
    written.append(snippets / "checkpoint_cost_gpu.md")
    return written


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ASSETS, help="JSON and plots (default: docs/assets/bench)")
    ap.add_argument("--snippets", type=Path, default=SNIPPETS, help="generated Markdown tables")
    ap.add_argument("--sizes", type=lambda s: [float(x) for x in s.split(",")], default=[10, 30, 100],
                    help="model sizes in millions of parameters (default: 10,30,100)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement; medians are reported")
    ap.add_argument("--dir", default=None, help="where the checkpoint files are written (default: $TMPDIR)")
    ap.add_argument("--gpu", action="store_true", help="the CUDA part: step cost after resume, GPU-to-CPU copies")
    ap.add_argument("--quick", action="store_true", help="with --gpu: fewer sizes and steps (under a minute)")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # --gpu --device cpu: smoke test
    ap.add_argument("--render", action="store_true", help="only rewrite tables and plots from the JSON")
    args = ap.parse_args(argv)

    if args.render:
        for p in render_all(args.out, args.snippets):
            print(f"wrote {p}")
        return 0

    if args.gpu:
        import torch
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print("checkpoint_bench --gpu needs CUDA: torch.cuda.is_available() is False here. "
                  "Nothing measured, nothing written.")
            return 0
        result = run_gpu(args, args.device)
        if args.device.startswith("cuda"):
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / GPU_JSON).write_text(json.dumps(result, indent=1) + "\n")
            args.snippets.mkdir(parents=True, exist_ok=True)
            (args.snippets / "checkpoint_cost_gpu.md").write_text(render_gpu(result), encoding="utf-8")
            paths = [args.out / GPU_JSON, args.snippets / "checkpoint_cost_gpu.md"]
        else:
            paths = []
        print(render_gpu(result))
        for p in paths:
            print(f"wrote {p}")
        return 0

    result = run_cpu(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / CPU_JSON).write_text(json.dumps(result, indent=1) + "\n")
    paths = [args.out / CPU_JSON] + render_all(args.out, args.snippets)
    print(render_cpu(result))
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

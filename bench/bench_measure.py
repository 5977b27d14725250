"""The measurements behind docs/concepts/checkpoint-cost.md: save and load times of a model
with Adam's state on the CPU, and on CUDA the cost of `step` on the GPU and of GPU-to-CPU
copies. Results are plain dicts, written as JSON by checkpoint_bench.py; nothing here
renders or plots. See checkpoint_bench.py for what is measured and how.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "docs" / "assets" / "bench"
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

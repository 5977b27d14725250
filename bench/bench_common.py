"""What every part of the checkpoint-cost benchmark shares: the machine's description, file
helpers (fsync, dropping files from the page cache), the workload (an MLP with Adam's state)
and a process group of one for torch.distributed.checkpoint."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "snippets" / "lib"  # the site's checkpoint library: checkpoint_files, background_checkpoint
if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))


# ---------------------------------------------------------------------------- the machine
def disk_of(path: Path) -> dict:
    """The block device under `path`: its name, model and whether it spins (as /sys says)."""
    try:
        out = subprocess.run(["df", "--output=source", str(path)], capture_output=True, text=True,
                             timeout=10).stdout.split()
        source = out[-1] if len(out) > 1 else "?"
    except (OSError, subprocess.SubprocessError):
        return {"device": "?"}
    name = Path(source).name
    base = name.split("p")[0] if name.startswith("nvme") else name.rstrip("0123456789")
    sysfs = Path("/sys/block") / base
    disk = {"device": source}
    for f in ("device/model", "device/name"):
        try:
            disk["model"] = (sysfs / f).read_text().strip()
            break
        except OSError:
            pass
    try:
        disk["rotational"] = (sysfs / "queue/rotational").read_text().strip() == "1"
    except OSError:
        pass
    return disk


def machine(path: Path | None = None) -> dict:
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
    out = {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "system": platform.platform()}
    if path is not None:
        usage = shutil.disk_usage(path)
        out |= {"disk": disk_of(path), "disk_free_bytes": usage.free, "disk_total_bytes": usage.total}
    return out


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


def init_single_process_group(backend: str = "gloo"):
    import torch.distributed as dist
    if dist.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


def background_checkpointer():
    """The site's background save (snippets/lib/background_checkpoint.py), or None where this
    checkout does not have it yet."""
    try:
        from background_checkpoint import BackgroundCheckpointer
    except ImportError:
        return None
    return BackgroundCheckpointer


def process_stager(pinned: bool = False):
    """dcp.async_save's stager for the process-based writer, kept between saves: shared memory
    (the writer process reads the staged state without a copy), pinned on a GPU."""
    from torch.distributed.checkpoint.staging import DefaultStager, StagingOptions
    return DefaultStager(StagingOptions(use_pinned_memory=pinned, use_shared_memory=True,
                                        use_async_staging=False, use_non_blocking_copy=pinned))


def async_process_save(state: dict, path: Path, stager):
    """dcp.async_save in a writer process, through `stager`; returns its future."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict_saver import AsyncCheckpointerType
    return dcp.async_save(state, checkpoint_id=path, async_checkpointer_type=AsyncCheckpointerType.PROCESS,
                          async_stager=stager)

# Recipe: checkpoint files that survive crashes, corruption and untrusted sources: the
# reusable functions. Page: docs/recipes/safe-checkpoints.md (and .ja.md), which embeds these
# sections between its examples (snippets/recipes/safe_checkpoints.py); the hyperparameter
# sections are also on docs/changes/schedulers.md, and the sections from load_by_name on
# are embedded by docs/changes/model.md (loading after the model changed; load_by_name
# also by docs/troubleshooting/errors.md). Tests import this file as the module
# checkpoint_files.

# --8<-- [start:atomic_write]
import contextlib
import errno
import hashlib
import os
import re
import shutil

import torch

TMP_PREFIX = ".tmp-"  # every temporary file starts with this (see clean_leftovers)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full disk, a full quota


class DiskFullError(OSError):
    """A write that did not fit on the disk (errno ENOSPC); says where, and how much is free."""


def _no_space(error):
    """Whether `error`, or an error it came from, is a full disk. torch.save reports one as
    RuntimeError ("unexpected pos ..."), raised while the write's OSError was handled."""
    for _ in range(20):  # a chain of causes, never a cycle
        if error is None:
            return False
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return True
        error = error.__cause__ or error.__context__
    return False


def size_text(n):
    """1.6 MB, 82.6 GB: a size as people read it."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def fsync_directory(directory):
    """Make a rename in `directory` durable: on POSIX the directory entry is data too."""
    if os.name != "posix":
        return  # Windows cannot open a directory to fsync it
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temporary_file(directory, name):
    """Create a file with a new name in `directory`, with the permissions a plain open()
    gives a new file (0666 minus the umask; tempfile.mkstemp would give 0600, unreadable to
    an evaluation job running as another user), or those of the file it will replace."""
    mode = 0o666
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(os.path.join(directory, name)).st_mode & 0o7777
    while True:
        tmp = os.path.join(directory, f"{TMP_PREFIX}{name}.{os.urandom(4).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise type(e)(e.errno, f"cannot create a file in {directory} ({e.strerror}): "
                              "save to a directory that this user can write to, or change "
                              "its permissions (or the mount, if read-only)") from e
            raise
        if mode != 0o666:
            os.fchmod(fd, mode)  # keep the mode of the file being replaced
        return fd, tmp


def atomic_write(path, write, before_replace=None):
    """Replace `path` with what `write(f)` writes: a reader sees the old file or the new one.

    The data goes to a temporary file in the same directory (so on the same filesystem),
    is flushed and fsync'ed, then renamed over `path` with os.replace (after calling
    `before_replace()`, if given), and the directory is fsync'ed so that the rename itself
    survives a power cut. On a full disk it raises DiskFullError (an OSError, errno 28),
    whatever error the writer raised.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _new_temporary_file(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()             # Python's buffer -> the kernel
            os.fsync(f.fileno())  # the kernel's cache -> the disk
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)     # atomic within one filesystem
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, Exception) and _no_space(e):  # not a Ctrl-C
            free = shutil.disk_usage(directory).free
            raise DiskFullError(errno.ENOSPC, f"the disk is full: {path} was not written "
                                f"({size_text(free)} free in {directory}); the partial file "
                                "is removed and the old one, if any, is unchanged") from e
        raise
    fsync_directory(directory)
# --8<-- [end:atomic_write]


# --8<-- [start:save_checkpoint]
import operator

CHECKPOINT = re.compile(r"ckpt-(\d{8,})\.pt")  # ckpt-00000042.pt ... ckpt-100003000.pt
LATEST = "latest"  # a small text file holding the name of the newest complete checkpoint


def checkpoint_name(step):
    return f"ckpt-{step:08d}.pt"  # 8 digits at least, more past step 99,999,999


def checkpoint_step(name):
    """The step of a checkpoint's file name, or None if `name` is not one."""
    found = CHECKPOINT.fullmatch(name)
    if found is None or checkpoint_name(int(found[1])) != name:
        return None
    return int(found[1])


def checkpoints(directory):
    """The checkpoint files in `directory`, oldest first: by step, as numbers."""
    names = [n for n in os.listdir(directory) if checkpoint_step(n) is not None]
    return sorted(names, key=checkpoint_step)


def check_directory(directory):
    """Raise NotADirectoryError, saying what it is, if `directory` exists but is no directory
    (a file; a symlink to a disk that is not mounted), rather than start from scratch."""
    if os.path.isdir(directory) or not os.path.lexists(directory):
        return
    what = "a file"
    if os.path.islink(directory):
        what = f"a symlink to {os.readlink(directory)}, which does not exist (a disk not mounted?)"
    raise NotADirectoryError(errno.ENOTDIR, f"{directory} is {what}, not a directory: pass the "
                             "directory that holds the checkpoints, or make it one")


def read_latest(directory):
    """The name that `latest` holds, or None if there is no `latest`."""
    try:
        with open(os.path.join(directory, LATEST), "rb") as f:
            return f.read(4096).decode(errors="replace").strip()
    except FileNotFoundError:
        return None


class _HashingWriter:
    """A file wrapper that computes the sha256 of the bytes torch.save writes through it."""

    def __init__(self, f):
        self.f, self.sha256 = f, hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


def _remove_checkpoint(directory, name):
    for p in (name, name + ".sha256"):  # the file first: a reader checks the sidecar first
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, p))


def _write_checkpoint(state, directory, name, checksum):
    path = os.path.join(directory, name)
    writer = None

    def write(f):
        nonlocal writer
        writer = _HashingWriter(f)
        torch.save(state, writer)

    def write_checksum():  # before the file takes its name: it never stands without it
        if checksum:
            line = f"{writer.sha256.hexdigest()}  {name}\n".encode()
            atomic_write(path + ".sha256", lambda f: f.write(line))

    atomic_write(path, write, before_replace=write_checksum)
    # The commit point: until `latest` names the new file, a reader uses the previous one.
    atomic_write(os.path.join(directory, LATEST), lambda f: f.write(f"{name}\n".encode()))


def save_checkpoint(state, directory, step, keep=3, checksum=True, log=print):
    """Save `state` as directory/ckpt-<step>.pt, then point `latest` at it; keep `keep` files.

    With `checksum`, the sha256 of the file is written beside it as ckpt-<step>.pt.sha256
    (the format of `sha256sum`, so `sha256sum -c` checks it too). On a full disk, it first
    removes, oldest first, the files that this save's rotation would remove anyway, and
    tries again (and logs it); if that is not enough, it raises DiskFullError, with the
    previous checkpoint and `latest` as they were.
    """
    step = operator.index(step)  # an integer: int, numpy or torch integers; not a float
    if step < 0 or keep < 1:
        raise ValueError(f"save_checkpoint: step must be >= 0 and keep >= 1, "
                         f"not step={step}, keep={keep}")
    check_directory(directory)
    os.makedirs(directory, exist_ok=True)
    name = checkpoint_name(step)
    while True:
        try:
            _write_checkpoint(state, directory, name, checksum)
            break
        except DiskFullError as e:
            committed = read_latest(directory)
            if committed != name:
                _remove_checkpoint(directory, name)  # never committed: take it away
            older = [n for n in checkpoints(directory) if checkpoint_step(n) < step]
            # What the rotation below removes after this save, but never the newest older
            # file, nor the one `latest` names: one complete checkpoint stays, always.
            removable = [n for n in older[:min(len(older) + 1 - keep, len(older) - 1)]
                         if n != committed]
            if not removable:
                last = os.path.join(directory, committed or "-")
                size = os.path.getsize(last) if os.path.isfile(last) else 0
                raise DiskFullError(errno.ENOSPC, (
                    f"the disk is full: {os.path.join(directory, name)} was not saved; "
                    f"{size_text(shutil.disk_usage(directory).free)} free in {directory}"
                    + (f", and the last checkpoint takes {size_text(size)}" if size else "")
                    + (f". `latest` still names {committed}, as it was," if committed else
                       ". There is no checkpoint yet,")
                    + " and nothing partial is left. A save needs room for the new file "
                    "beside the last one"
                    + (f" and the others that keep={keep} keeps: free space there, save to "
                       "another disk, or lower keep" if keep > 1 else
                       ": free space there, or save to another disk"))) from e
            _remove_checkpoint(directory, removable[0])
            log(f"{directory}: the disk is full: removed {removable[0]} (keep={keep} would "
                f"have removed it after this save) and saving {name} again. Free space "
                "there, or lower keep, to save without this")

    done = [n for n in checkpoints(directory) if checkpoint_step(n) <= step]
    for old in done[:-keep]:
        _remove_checkpoint(directory, old)
    return os.path.join(directory, name)
# --8<-- [end:save_checkpoint]


# --8<-- [start:clean_leftovers]
def clean_leftovers(directory):
    """Remove the temporary files that a killed save left behind. Call it at start-up,
    while no other process is writing to `directory`. Returns the names removed."""
    check_directory(directory)
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        orphan = name.endswith(".sha256") and not os.path.exists(
            os.path.join(directory, name[: -len(".sha256")]))
        if name.startswith(TMP_PREFIX) or orphan:
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed
# --8<-- [end:clean_leftovers]


# --8<-- [start:fast_load]
import contextlib
import copy
import hashlib
import os
import queue
import sys
import threading
import zipfile
from collections import OrderedDict

import torch

CHUNK = 32 << 20  # bytes per read: large sequential reads, as fast as the disk streams


class _Sha256Thread:
    """sha256 of the pieces given to it, in order, computed in a thread while the caller goes
    on reading: hashlib releases the GIL on buffers over 2 KiB, so reading and hashing overlap."""

    def __init__(self):
        self.sha256, self.pieces = hashlib.sha256(), queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while (piece := self.pieces.get()) is not None:
            self.sha256.update(piece)

    def update(self, piece):
        self.pieces.put(piece)

    def hexdigest(self):
        self.pieces.put(None)
        self.thread.join()
        return self.sha256.hexdigest()


class _NotPlain(Exception):
    """Not a checkpoint that the fast reader handles: load it with torch.load instead."""


def _storage_plan(f):
    """The checkpoint's structure without its data (torch.load to the meta device reads only
    the pickle and the zip directory), and the file offset and size of every storage."""
    with zipfile.ZipFile(f) as z:  # a file saved on a big-endian machine needs byte swaps
        order = [n for n in z.namelist() if n.endswith("/byteorder")]
        if order and z.read(order[0]).decode() != sys.byteorder:
            raise _NotPlain("byte order")
    f.seek(0)
    meta = torch.load(f, map_location="meta", weights_only=True)
    storages = {}  # file offset -> bytes
    for t in _tensors(meta, {}):
        s = t.untyped_storage()
        offset = getattr(s, "_checkpoint_offset", None)
        if offset is None:
            raise _NotPlain("no storage offset")
        storages[offset] = s.nbytes()
    return meta, storages


def _tensors(obj, seen):
    """Every tensor in a loaded checkpoint; _NotPlain for anything but containers and values."""
    if id(obj) in seen:
        return
    seen[id(obj)] = obj
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, torch.nn.Parameter) or obj.layout != torch.strided \
                or obj.is_quantized:
            raise _NotPlain(type(obj).__name__)
        yield obj
    elif type(obj) in (dict, OrderedDict, list, tuple):
        for v in (obj.values() if isinstance(obj, dict) else obj):
            yield from _tensors(v, seen)
    elif not isinstance(obj, (str, bytes, int, float, complex, bool, type(None), torch.dtype,
                              torch.device, torch.Size, slice, range)):
        raise _NotPlain(type(obj).__name__)


def _rebuild(obj, buffers, done):
    """The checkpoint again, each meta tensor replaced by one on its storage's buffer."""
    if id(obj) in done:
        return done[id(obj)]
    if isinstance(obj, torch.Tensor):
        s = obj.untyped_storage()
        t = torch.empty(0, dtype=obj.dtype).set_(
            buffers[s._checkpoint_offset].untyped_storage(), obj.storage_offset(), obj.shape,
            obj.stride())
        out = torch.nn.Parameter(t, obj.requires_grad) if type(obj) is torch.nn.Parameter \
            else t.requires_grad_(obj.requires_grad)
    elif isinstance(obj, dict):
        out = copy.copy(obj)  # keeps the state dict's _metadata (module versions)
        for k, v in obj.items():
            out[k] = _rebuild(v, buffers, done)
    elif type(obj) in (list, tuple):
        out = type(obj)(_rebuild(v, buffers, done) for v in obj)
    else:
        out = obj
    done[id(obj)] = out
    return out


def _read_fast(f, path, hasher):
    """Read the whole file once, in file order, with large reads: each storage straight into
    its own new tensor, the bytes between them (zip headers, the pickle) into small buffers,
    and every piece to `hasher` if given. Returns the checkpoint, or None if `f` is not a
    plain checkpoint (an old format, a big-endian file, tensor subclasses): load it with
    torch.load then."""
    try:
        meta, storages = _storage_plan(f)
    except Exception:  # noqa: BLE001 - torch.load, on the same file, says what is wrong
        return None
    size = os.fstat(f.fileno()).st_size
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)  # a larger read-ahead
    buffers, pos = {}, 0
    f.seek(0)

    def read_into(view):
        nonlocal pos
        for i in range(0, len(view), CHUNK):
            piece = view[i:i + CHUNK]
            got = 0
            while got < len(piece):
                n = f.readinto(piece[got:])
                if not n:
                    raise CheckpointError(f"{path}: the file ended at byte {pos + got} while "
                                          "being read (truncated meanwhile?). Load it again, "
                                          "or load an older checkpoint.")
                got += n
            if hasher is not None:
                hasher.update(piece)
            pos += len(piece)

    for offset in sorted(storages):
        if offset < pos:
            raise CheckpointError(f"{path}: storages overlap at byte {offset}: not a file that "
                                  "torch.save wrote. Load an older checkpoint.")
        read_into(memoryview(bytearray(offset - pos)))  # headers between two storages
        buffers[offset] = torch.empty(storages[offset], dtype=torch.uint8)
        read_into(memoryview(buffers[offset].numpy()))
    read_into(memoryview(bytearray(size - pos)))  # the zip directory at the end
    return _rebuild(meta, buffers, {})
# --8<-- [end:fast_load]


# --8<-- [start:load_checkpoint]
class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


class CheckpointVanished(CheckpointError):
    """The file is not there (any more): another process may have rotated it away."""


class CheckpointAccessError(CheckpointError):
    """The file is there but this process may not read it: fix that, do not fall back."""


def _first_line(exc):
    """The informative line of a torch.load error (weights_only errors put it last)."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    line = next((l for l in lines if "Unsupported global" in l), lines[0] if lines else "")
    line = line.split(". This is an internal miniz error")[0]
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _unreadable(path, e):
    if isinstance(e, PermissionError):
        return CheckpointAccessError(
            f"{path}: not readable by this user (uid {os.getuid()}; {e.strerror}): change its "
            "permissions or owner, or run as the user that wrote it. Nothing was loaded.")
    return CheckpointError(f"{path}: cannot be read ({type(e).__name__}: {e.strerror or e}). "
                           "Load an older checkpoint, or check the disk.")


def load_checkpoint(path, require_checksum=False, keys=(), fast=False):
    """torch.load with weights_only=True, and an error that says which file and what is wrong.

    The file is opened once: the bytes checked against the sha256 are the bytes loaded, even
    if another process removes or replaces the file meanwhile. With `fast`, it is also read
    once: large reads straight into the tensors, the sha256 computed in a thread meanwhile.
    """
    sidecar = path + ".sha256"
    try:  # the sidecar first: save_checkpoint removes the checkpoint first
        with open(sidecar, "rb") as f:
            line = f.read(4096).decode(errors="replace")
    except FileNotFoundError:
        line = None
    except OSError as e:
        raise _unreadable(sidecar, e) from e
    expected = None
    if line is not None:
        expected = (line.split() or [""])[0]
        if not re.fullmatch(r"[0-9a-f]{64}", expected):
            raise CheckpointError(
                f"{sidecar}: not a sha256 line ({line[:40]!r}): the checksum file is empty "
                f"or damaged, so {os.path.basename(path)} cannot be checked. Load an older "
                "checkpoint (or check the file by hand and delete the checksum file).")
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise CheckpointVanished(f"{path}: no such file") from None
    except OSError as e:
        raise _unreadable(path, e) from e
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise CheckpointError(f"{path}: the file is empty (a save was interrupted). "
                                  "Load an older checkpoint.")
        if expected is None and require_checksum:
            raise CheckpointError(f"{path}: no {os.path.basename(sidecar)} beside it")
        state = None
        if fast:
            hasher = _Sha256Thread() if expected is not None else None
            try:
                state = _read_fast(f, path, hasher)
            finally:
                digest = hasher.hexdigest() if hasher is not None else None
            if state is None:
                f.seek(0)  # not a plain checkpoint: the checks and torch.load below
            elif digest != expected:
                _mismatch(path, sidecar)
        if state is None and expected is not None:
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            if h.hexdigest() != expected:
                _mismatch(path, sidecar)
            f.seek(0)
        if state is None:
            try:
                state = torch.load(f, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - every failure becomes one clear message
                raise CheckpointError(
                    f"{path}: torch.load failed ({_first_line(e)}); the file is truncated, "
                    "corrupt or not a checkpoint. Load an older checkpoint.") from e
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing keys {missing}")
    return state


def _mismatch(path, sidecar):
    raise CheckpointError(
        f"{path}: sha256 does not match {os.path.basename(sidecar)}: the file "
        "changed after it was saved (truncated, or damaged on disk or in a "
        "copy). Load an older checkpoint.")
# --8<-- [end:load_checkpoint]


# --8<-- [start:load_latest]
def load_latest(directory, log=print, **kwargs):
    """Load the checkpoint that `latest` names or, if it is unusable, the newest older one.

    Returns (state, path), or (None, None) if there is no checkpoint at all. Raises
    CheckpointError if there are checkpoints but none loads, or one may not be read (a
    permission): do not start from scratch then. A file that vanishes while another process
    rotates the checkpoints is not damage: it reads `latest` again.
    """
    check_directory(directory)
    for _ in range(100):
        if not os.path.isdir(directory):
            return None, None
        names = checkpoints(directory)[::-1]  # newest first
        if not names:
            return None, None
        newest = committed = read_latest(directory)
        if newest is None:
            newest = names[0]
        elif checkpoint_step(newest) is None:
            log(f"skipped {os.path.join(directory, LATEST)}: it names {newest!r}, not a checkpoint")
            newest = names[0]
        # Files newer than `latest` were never committed: skip them.
        candidates = [newest] + [n for n in names if checkpoint_step(n) < checkpoint_step(newest)]
        for name in candidates:
            path = os.path.join(directory, name)
            try:
                return load_checkpoint(path, **kwargs), path
            except CheckpointAccessError:
                raise
            except CheckpointVanished as e:
                if read_latest(directory) != committed or checkpoints(directory)[::-1] != names:
                    break  # rotated meanwhile: read `latest` again
                log(f"skipped {e}")
            except CheckpointError as e:
                log(f"skipped {e}")
        else:
            newer = [n for n in names if checkpoint_step(n) > checkpoint_step(newest)]
            raise CheckpointError(
                f"{directory}: none of {candidates} loads; see the messages above"
                + (f" ({newer} are newer than what `latest` names: never committed)"
                   if newer else ""))
    raise CheckpointError(f"{directory}: the checkpoints changed 100 times while being read: "
                          "another process saves faster than this one reads")
# --8<-- [end:load_latest]


# --8<-- [start:hyperparameters_set]
from torch.optim import lr_scheduler as schedulers

# Schedulers whose learning rate is eta_min + (base_lr - eta_min) * f(step): changing the
# base scales the distance to eta_min (0 for most of them) at the current point.
SCALED_BY_BASE = (schedulers.LambdaLR, schedulers.MultiplicativeLR, schedulers.StepLR,
                  schedulers.MultiStepLR, schedulers.ConstantLR, schedulers.LinearLR,
                  schedulers.ExponentialLR, schedulers.PolynomialLR,
                  schedulers.CosineAnnealingLR, schedulers.CosineAnnealingWarmRestarts)


PLURAL = {"lr": "learning rates", "weight_decay": "weight decays"}


def one_per_group(value, current, what, caller):
    """`value` as a list with one entry per parameter group. A list is taken as it is; one
    value is given to every group only if the groups now have the same one (`current`):
    where they differ (decay and no-decay, a lower rate for the backbone), which group
    it means is a guess, so it is refused."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(current):
            raise ValueError(f"{caller}: {len(value)} {PLURAL[what]} for "
                             f"{len(current)} parameter groups")
        return list(value)
    if value is not None and len(set(current)) > 1:
        raise ValueError(f"{caller}: one {what} ({value}) for {len(current)} parameter groups "
                         f"that have different ones ({current}); give a list with one "
                         f"value per group")
    return [value] * len(current)


def set_hyperparameters(optimizer, scheduler=None, lr=None, weight_decay=None):
    """Change lr and weight decay after loading, as if the run had used them from the start.

    `lr` is the new base learning rate (OneCycleLR: the new max_lr; ReduceLROnPlateau or no
    scheduler: the learning rate from now on); `lr` and `weight_decay` are each one value,
    or a list with one per parameter group (None: leave that group as it is). One value
    for groups that now differ is refused. A schedule keeps its shape and its position.
    Composite and two-bound schedulers (SequentialLR, ChainedScheduler, CyclicLR) are
    refused: build them anew with the new values instead.
    """
    kind, groups = type(scheduler), optimizer.param_groups
    if lr is not None and scheduler is not None and kind is not schedulers.ReduceLROnPlateau \
            and kind is not schedulers.OneCycleLR and kind not in SCALED_BY_BASE:
        raise TypeError(f"set_hyperparameters: cannot change the learning rate of a "
                        f"{kind.__name__}; build a new {kind.__name__} with the new value")
    if kind is schedulers.OneCycleLR:
        bases = [g["max_lr"] for g in groups]
    elif kind in SCALED_BY_BASE:
        bases = list(scheduler.base_lrs)
    else:
        bases = [g["lr"] for g in groups]
    lrs = one_per_group(lr, bases, "lr", "set_hyperparameters")
    decays = one_per_group(weight_decay, [g.get("weight_decay") for g in groups],
                           "weight_decay", "set_hyperparameters")
    for i, (group, lr, decay) in enumerate(zip(groups, lrs, decays)):
        if decay is not None:
            group["weight_decay"] = decay
        if lr is None:
            continue
        if scheduler is None or kind is schedulers.ReduceLROnPlateau:
            group["lr"] = lr
        elif kind is schedulers.OneCycleLR:  # it computes every lr from these three
            ratio = lr / group["max_lr"]
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                group[key] *= ratio
        else:
            eta_min = getattr(scheduler, "eta_min", 0.0)
            group["lr"] = eta_min + (group["lr"] - eta_min) * (
                (lr - eta_min) / (scheduler.base_lrs[i] - eta_min))
            scheduler.base_lrs[i] = group["initial_lr"] = lr
# --8<-- [end:hyperparameters_set]


# --8<-- [start:hyperparameters_composite]
def set_composite_lr(optimizer, scheduler, lr):
    """set_hyperparameters' new base learning rate for a SequentialLR or ChainedScheduler
    whose inner schedulers all scale with their base and anneal to 0 (no eta_min).

    Their learning rate is then base_lr * f(step), so the new base scales the current value
    and becomes every inner scheduler's base. `lr` is one value, or a list with one per
    parameter group; one value for groups whose bases differ is refused. Call it after
    loading, like set_hyperparameters.
    """
    inner = scheduler._schedulers  # torch's name for the inner schedulers of both composites
    odd = [type(s).__name__ for s in inner
           if type(s) not in SCALED_BY_BASE or getattr(s, "eta_min", 0.0) != 0.0]
    if odd:
        raise TypeError(f"set_composite_lr: {', '.join(odd)} inside a "
                        f"{type(scheduler).__name__} does not scale with the base learning "
                        f"rate; build a new {type(scheduler).__name__} with the new value")
    groups = optimizer.param_groups
    lrs = one_per_group(lr, [g["initial_lr"] for g in groups], "lr", "set_composite_lr")
    for i, (group, lr) in enumerate(zip(groups, lrs)):
        if lr is None:
            continue
        group["lr"] *= lr / group["initial_lr"]
        group["initial_lr"] = lr
        for s in inner:
            s.base_lrs[i] = lr
# --8<-- [end:hyperparameters_composite]
# --8<-- [start:load_by_name]
import torch

# The levels that wrappers add to parameter names: DistributedDataParallel and DataParallel
# ("module"), torch.compile ("_orig_mod"), FSDP1 ("_fsdp_wrapped_module"), activation
# checkpointing ("_checkpoint_wrapped_module"). FSDP2's fully_shard adds none.
WRAPPERS = {"module", "_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"}


def plain_name(name):
    """fc1.weight for module._orig_mod.fc1.weight: every wrapper level removed, in any order
    and at any depth (activation checkpointing and FSDP1 wrap blocks inside the model)."""
    *path, last = name.split(".")
    return ".".join([part for part in path if part not in WRAPPERS] + [last])


def plain_names(names, where):
    """plain_name of each name; two names that become one are refused."""
    plain = {}
    for name in names:
        other = plain.setdefault(plain_name(name), name)
        if other != name:
            raise ValueError(f"{where}: {other} and {name} are both {plain_name(name)} "
                             "without wrapper prefixes; rename one of the modules")
    return list(plain)


def check_group_count(optimizer, saved):
    if len(optimizer.param_groups) != len(saved["param_groups"]):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups in the checkpoint, "
                         f"{len(optimizer.param_groups)} here: build the same groups first")


# The shape of each kind of state that torch's optimizers keep per parameter, from the
# parameter's shape: per-element state (Adam's moments, momentum buffers, ...) has its
# shape; Adafactor keeps factored row and column statistics. Other state (step, NAdam's
# mu_product, state of optimizers not listed) has no shape to compare.
STATE_SHAPES = {key: (lambda shape: shape) for key in (
    "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "momentum_buffer", "square_avg",
    "grad_avg", "acc_delta", "sum", "ax", "prev", "step_size", "variance")}
STATE_SHAPES["row_var"] = lambda shape: shape[:-1] + (1,)
STATE_SHAPES["col_var"] = lambda shape: shape[:-2] + (1, shape[-1])


def misfit(param, entry):
    """(key, shape) of the first saved state whose shape does not fit `param`, or None."""
    for key, value in entry.items():
        if torch.is_tensor(value) and key in STATE_SHAPES and \
                tuple(value.shape) != STATE_SHAPES[key](tuple(param.shape)):
            return key, tuple(value.shape)
    return None


def match_groups(names, saved_names):
    """For each group here (its plain names), the index of the saved group that holds its
    parameters. Refuses groups whose members changed: parameters of two saved groups in
    one group, a saved group split, a group with no saved parameter to match."""
    saved_group = {n: j for j, group in enumerate(saved_names) for n in group}
    match = []
    for i, group in enumerate(names):
        found = {}  # saved group: the first of its parameters in this group
        for n in group:
            if n in saved_group:
                found.setdefault(saved_group[n], n)
        if len(found) > 1:
            raise ValueError(f"group {i} holds parameters of the checkpoint's groups "
                             f"{sorted(found)} ({', '.join(found.values())}): the groups "
                             "are built another way than when saved; build them as saved")
        match.append(next(iter(found), None))
    taken = [j for j in match if j is not None]
    for j in set(taken):
        if taken.count(j) > 1:
            raise ValueError(f"the checkpoint's group {j} is split over the groups "
                             f"{[i for i, m in enumerate(match) if m == j]} here; "
                             "build the groups as saved")
    left = [j for j in range(len(saved_names)) if j not in taken]
    for i, j in enumerate(match):
        if j is None:
            j = left.pop(0)  # as many left as unmatched: the group counts are the same
            if names[i] or saved_names[j]:
                raise ValueError(
                    f"no saved parameter matches group {i} {names[i][:3]}; the checkpoint "
                    f"has {saved_names[j][:3]}... in group {j}: a checkpoint of another "
                    "model, or names that changed (rename them in the checkpoint)")
            match[i] = j  # two empty groups
    return match


# The scheduler state that holds one value per parameter group.
PER_GROUP = ("base_lrs", "_last_lr", "lr_lambdas", "min_lrs", "max_lrs",
             "base_momentums", "max_momentums")


def in_group_order(scheduler_state, match):
    """A scheduler's saved state with its per-group values in the order of the groups here."""
    state = dict(scheduler_state)
    for key in PER_GROUP:  # a scheduler built before add_param_group has fewer values
        if isinstance(state.get(key), list) and len(state[key]) == len(match):
            state[key] = [state[key][j] for j in match]
    if "_schedulers" in state:  # SequentialLR, ChainedScheduler
        state["_schedulers"] = [in_group_order(s, match) for s in state["_schedulers"]]
    return state


def load_by_name(optimizer, saved, skip=(), scheduler=None, saved_scheduler=None):
    """Load an optimizer state dict by parameter name, not by position.

    Both optimizers must be built from model.named_parameters() (torch 2.6 or later records
    the names as `param_names`), with the same number of groups. Each group is matched to
    the saved group that holds its parameters, in whatever order the groups come, and takes
    its hyperparameters; groups whose members changed are refused, as is a checkpoint none
    of whose names is here. Parameters new since the save start without state; saved ones
    that are gone are dropped; a saved state whose shape does not fit its parameter is
    refused. Names that start with a prefix in `skip` ("head.": a layer replaced or resized
    for fine-tuning) start without state too. Give the scheduler and its saved state as
    `scheduler` and `saved_scheduler` to load it in the same group order (needed when the
    groups come in another order than saved; refused without them if a scheduler is set).
    Returns (names that start without state, saved names whose state is dropped)."""
    groups, saved_groups = optimizer.param_groups, saved["param_groups"]
    for where, gs in (("this optimizer", groups), ("the checkpoint", saved_groups)):
        if any("param_names" not in g for g in gs):
            raise ValueError(f"{where} has no param_names: build the optimizer from "
                             "model.named_parameters() (torch 2.6 or later)")
    check_group_count(optimizer, saved)
    if (scheduler is None) != (saved_scheduler is None):
        raise ValueError("load_by_name: give both scheduler= and saved_scheduler=, or neither")
    plain_names([n for g in groups for n in g["param_names"]], "this optimizer")
    plain_names([n for g in saved_groups for n in g["param_names"]], "the checkpoint")
    names = [[plain_name(n) for n in g["param_names"]] for g in groups]
    saved_names = [[plain_name(n) for n in g["param_names"]] for g in saved_groups]
    match = match_groups(names, saved_names)
    reordered = match != sorted(match)
    if reordered and scheduler is None and any("initial_lr" in g for g in groups):
        raise ValueError(f"the groups are in another order than saved ({match}) and a "
                         "scheduler is set on this optimizer: pass scheduler= and "
                         "saved_scheduler= so that its per-group state follows its group")
    by_name = {plain_name(name): saved["state"][i]
               for g in saved_groups for i, name in zip(g["params"], g["param_names"])
               if i in saved["state"]}
    state, new_groups, index, found = {}, [], 0, set()
    for group, group_names, j in zip(groups, names, match):
        for p, name, plain in zip(group["params"], group["param_names"], group_names):
            entry = None if plain.startswith(tuple(skip)) else by_name.get(plain)
            if entry is not None:
                if misfit(p, entry):
                    key, shape = misfit(p, entry)
                    raise ValueError(f"{name}: saved {key} has shape {shape}, "
                                     f"the parameter {tuple(p.shape)}")
                state[index] = entry
                found.add(plain)
            index += 1
        hyperparameters = {k: v for k, v in saved_groups[j].items()
                           if k not in ("params", "param_names")}
        new_groups.append({**hyperparameters, "param_names": list(group["param_names"]),
                           "params": list(range(index - len(group["params"]), index))})
    optimizer.load_state_dict({"state": state, "param_groups": new_groups})
    if scheduler is not None:
        scheduler.load_state_dict(in_group_order(saved_scheduler, match))
    everything = [n for group_names in names for n in group_names]
    return [n for n in everything if n not in found], sorted(set(by_name) - found)
# --8<-- [end:load_by_name]


# --8<-- [start:check_same_parameters]
def check_same_parameters(optimizer, saved):
    """Raise ValueError if optimizer.load_state_dict(saved) would hand a parameter the state
    or the hyperparameters of another: that method matches by position and checks only the
    counts. Call it before.

    Compares, group by group and position by position, the group names (a "name" key, if
    the groups have one), the parameter names (`param_names`, wrapper prefixes aside) and
    the shapes of the saved per-parameter state with those of the parameters."""
    check_group_count(optimizer, saved)
    groups, saved_groups = optimizer.param_groups, saved["param_groups"]
    for g, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        if group.get("name") != saved_group.get("name"):
            raise ValueError(f"group {g} is {group.get('name')!r} here, "
                             f"{saved_group.get('name')!r} in the checkpoint")
        if len(group["params"]) != len(saved_group["params"]):
            raise ValueError(f"group {g}: {len(saved_group['params'])} parameters in the "
                             f"checkpoint, {len(group['params'])} here")
        names = group.get("param_names", [None] * len(group["params"]))
        saved_names = saved_group.get("param_names", names)  # no names saved: shapes only
        for p, i, name, saved_name in zip(group["params"], saved_group["params"], names,
                                          saved_names):
            if name is not None and plain_name(name) != plain_name(saved_name):
                raise ValueError(f"group {g}: {name} here is {saved_name} in the checkpoint: "
                                 "the parameters are in another order; load by name")
            if misfit(p, saved["state"].get(i, {})):
                key, shape = misfit(p, saved["state"][i])
                raise ValueError(f"group {g}: {name or 'parameter ' + str(i)} has shape "
                                 f"{tuple(p.shape)}, its saved {key} {shape}")
# --8<-- [end:check_same_parameters]


# --8<-- [start:load_weights]
def load_weights(model, state, skip=()):
    """model.load_state_dict(state) by name, wrapper prefixes aside on either side.

    Keys that start with a prefix in `skip` (a new or resized layer, a layer removed since
    the save: "head.") are neither loaded nor required. Any other key that the model lacks,
    or the checkpoint lacks, is an error that names them, raised before anything is loaded:
    strict=False would skip them silently. Returns the keys left at their initial values."""
    def skipped(key):
        return plain_name(key).startswith(tuple(skip))

    plain_names(state, "the checkpoint")  # two keys that become one are refused
    own = dict(zip(plain_names(model.state_dict(), "the model"), model.state_dict()))
    state = {own.get(plain_name(k), k): v for k, v in state.items() if not skipped(k)}
    missing = [k for k in own.values() if k not in state and not skipped(k)]
    unexpected = [k for k in state if k not in own.values()]
    if missing or unexpected:
        raise ValueError(f"{len(missing)} of the model's {len(own)} keys are not in the "
                         f"checkpoint {missing[:4]}, {len(unexpected)} of its keys are not in "
                         f"the model {unexpected[:4]}: a checkpoint of another model, or "
                         "name the changed layers in skip=")
    return model.load_state_dict(state, strict=False).missing_keys  # shapes: torch checks
# --8<-- [end:load_weights]

# Recipe: checkpoint files that survive crashes, corruption and untrusted sources: the
# reusable functions. Page: docs/recipes/safe-checkpoints.md (and .ja.md), which embeds these
# sections between its examples (snippets/recipes/safe_checkpoints.py); the hyperparameter
# sections are also on docs/changes/schedulers.md, and the sections from load_by_name on
# are embedded by docs/changes/model.md (loading after the model changed; load_by_name
# also by docs/troubleshooting/errors.md). Tests import this file as the module
# checkpoint_files.

# --8<-- [start:atomic_write]
import contextlib
import hashlib
import os
import re

import torch

TMP_PREFIX = ".tmp-"  # every temporary file starts with this (see clean_leftovers)


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
        if mode != 0o666:
            os.fchmod(fd, mode)  # keep the mode of the file being replaced
        return fd, tmp


def atomic_write(path, write):
    """Replace `path` with what `write(f)` writes: a reader sees the old file or the new one.

    The data goes to a temporary file in the same directory (so on the same filesystem),
    is flushed and fsync'ed, then renamed over `path` with os.replace, and the directory
    is fsync'ed so that the rename itself survives a power cut.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _new_temporary_file(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()             # Python's buffer -> the kernel
            os.fsync(f.fileno())  # the kernel's cache -> the disk
        os.replace(tmp, path)     # atomic within one filesystem
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    fsync_directory(directory)
# --8<-- [end:atomic_write]


# --8<-- [start:save_checkpoint]
CHECKPOINT = re.compile(r"ckpt-(\d{8})\.pt")  # ckpt-00000042.pt: sorts by step
LATEST = "latest"  # a small text file holding the name of the newest complete checkpoint


class _HashingWriter:
    """A file wrapper that computes the sha256 of the bytes torch.save writes through it."""

    def __init__(self, f):
        self.f, self.sha256 = f, hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


def save_checkpoint(state, directory, step, keep=3, checksum=True):
    """Save `state` as directory/ckpt-<step>.pt, then point `latest` at it; keep `keep` files.

    With `checksum`, the sha256 of the file is written beside it as ckpt-<step>.pt.sha256
    (the format of `sha256sum`, so `sha256sum -c` checks it too).
    """
    os.makedirs(directory, exist_ok=True)
    name = f"ckpt-{step:08d}.pt"
    path = os.path.join(directory, name)
    writer = None

    def write(f):
        nonlocal writer
        writer = _HashingWriter(f)
        torch.save(state, writer)

    atomic_write(path, write)
    if checksum:
        line = f"{writer.sha256.hexdigest()}  {name}\n".encode()
        atomic_write(path + ".sha256", lambda f: f.write(line))
    # The commit point: until `latest` names the new file, a reader uses the previous one.
    atomic_write(os.path.join(directory, LATEST), lambda f: f.write(f"{name}\n".encode()))

    done = sorted(n for n in os.listdir(directory) if CHECKPOINT.fullmatch(n) and n <= name)
    for old in done[:-keep]:
        for p in (old, old + ".sha256"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, p))
    return path
# --8<-- [end:save_checkpoint]


# --8<-- [start:clean_leftovers]
def clean_leftovers(directory):
    """Remove the temporary files that a killed save left behind. Call it at start-up,
    while no other process is writing to `directory`. Returns the names removed."""
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


# --8<-- [start:load_checkpoint]
class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def _first_line(exc):
    """The informative line of a torch.load error (weights_only errors put it last)."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    line = next((l for l in lines if "Unsupported global" in l), lines[0] if lines else "")
    line = line.split(". This is an internal miniz error")[0]
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def load_checkpoint(path, require_checksum=False, keys=()):
    """torch.load with weights_only=True, and an error that says which file and what is wrong."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file")
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (a save was interrupted). "
                              "Load an older checkpoint.")
    sidecar = path + ".sha256"
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            expected = f.read().split()[0]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != expected:
            raise CheckpointError(
                f"{path}: sha256 does not match {os.path.basename(sidecar)}: the file changed "
                "after it was saved (truncated, or damaged on disk or in a copy). "
                "Load an older checkpoint.")
    elif require_checksum:
        raise CheckpointError(f"{path}: no {os.path.basename(sidecar)} beside it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear message
        raise CheckpointError(
            f"{path}: torch.load failed ({_first_line(e)}); the file is truncated, corrupt "
            "or not a checkpoint. Load an older checkpoint.") from e
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing keys {missing}")
    return state
# --8<-- [end:load_checkpoint]


# --8<-- [start:load_latest]
def load_latest(directory, log=print, **kwargs):
    """Load the checkpoint that `latest` names or, if it is unusable, the newest older one.

    Returns (state, path), or (None, None) if there is no checkpoint at all. Raises
    CheckpointError if there are checkpoints but none loads: do not start from scratch then.
    """
    if not os.path.isdir(directory):
        return None, None
    names = sorted((n for n in os.listdir(directory) if CHECKPOINT.fullmatch(n)), reverse=True)
    if not names:
        return None, None
    try:
        with open(os.path.join(directory, LATEST)) as f:
            newest = f.read().strip()
    except FileNotFoundError:
        newest = names[0]
    if not CHECKPOINT.fullmatch(newest):
        log(f"skipped {directory}/{LATEST}: it names {newest!r}, not a checkpoint")
        newest = names[0]
    # Files newer than `latest` were never committed: skip them.
    candidates = [newest] + [n for n in names if n < newest]
    for name in candidates:
        path = os.path.join(directory, name)
        try:
            return load_checkpoint(path, **kwargs), path
        except CheckpointError as e:
            log(f"skipped {e}")
    raise CheckpointError(f"{directory}: none of {candidates} loads; see the messages above")
# --8<-- [end:load_latest]


# --8<-- [start:hyperparameters_set]
from torch.optim import lr_scheduler as schedulers

# Schedulers whose learning rate is eta_min + (base_lr - eta_min) * f(step): changing the
# base scales the distance to eta_min (0 for most of them) at the current point.
SCALED_BY_BASE = (schedulers.LambdaLR, schedulers.MultiplicativeLR, schedulers.StepLR,
                  schedulers.MultiStepLR, schedulers.ConstantLR, schedulers.LinearLR,
                  schedulers.ExponentialLR, schedulers.PolynomialLR,
                  schedulers.CosineAnnealingLR, schedulers.CosineAnnealingWarmRestarts)


def set_hyperparameters(optimizer, scheduler=None, lr=None, weight_decay=None):
    """Change lr and weight decay after loading, as if the run had used them from the start.

    `lr` is the new base learning rate, or a list with one per parameter group (OneCycleLR:
    the new max_lr; ReduceLROnPlateau or no scheduler: the learning rate from now on). A
    schedule keeps its shape and its position.
    Composite and two-bound schedulers (SequentialLR, ChainedScheduler, CyclicLR) are
    refused: build them anew with the new values instead.
    """
    kind = type(scheduler)
    if lr is not None and scheduler is not None and kind is not schedulers.ReduceLROnPlateau \
            and kind is not schedulers.OneCycleLR and kind not in SCALED_BY_BASE:
        raise TypeError(f"set_hyperparameters: cannot change the learning rate of a "
                        f"{kind.__name__}; build a new {kind.__name__} with the new value")
    lrs = lr if isinstance(lr, (list, tuple)) else [lr] * len(optimizer.param_groups)
    if len(lrs) != len(optimizer.param_groups):
        raise ValueError(f"set_hyperparameters: {len(lrs)} learning rates for "
                         f"{len(optimizer.param_groups)} parameter groups")
    for i, (group, lr) in enumerate(zip(optimizer.param_groups, lrs)):
        if weight_decay is not None:
            group["weight_decay"] = weight_decay
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
    and becomes every inner scheduler's base. Call it after loading, like set_hyperparameters.
    """
    inner = scheduler._schedulers  # torch's name for the inner schedulers of both composites
    odd = [type(s).__name__ for s in inner
           if type(s) not in SCALED_BY_BASE or getattr(s, "eta_min", 0.0) != 0.0]
    if odd:
        raise TypeError(f"set_composite_lr: {', '.join(odd)} inside a "
                        f"{type(scheduler).__name__} does not scale with the base learning "
                        f"rate; build a new {type(scheduler).__name__} with the new value")
    lrs = lr if isinstance(lr, (list, tuple)) else [lr] * len(optimizer.param_groups)
    if len(lrs) != len(optimizer.param_groups):
        raise ValueError(f"set_composite_lr: {len(lrs)} learning rates for "
                         f"{len(optimizer.param_groups)} parameter groups")
    for i, (group, lr) in enumerate(zip(optimizer.param_groups, lrs)):
        group["lr"] *= lr / group["initial_lr"]
        group["initial_lr"] = lr
        for s in inner:
            s.base_lrs[i] = lr
# --8<-- [end:hyperparameters_composite]
# --8<-- [start:load_by_name]
import re

import torch


def plain_name(name):
    """fc1.weight for module.fc1.weight (DDP, DataParallel) or _orig_mod.fc1.weight (compile)."""
    return re.sub(r"(^|\.)(module|_orig_mod)\.", r"\1", name)


def check_group_count(optimizer, saved):
    if len(optimizer.param_groups) != len(saved["param_groups"]):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups in the checkpoint, "
                         f"{len(optimizer.param_groups)} here: build the same groups first")


def load_by_name(optimizer, saved, skip=()):
    """Load an optimizer state dict by parameter name, not by position.

    Both optimizers must be built from model.named_parameters() (torch 2.6 or later records
    the names as `param_names`), with the same number of groups. Parameters new since the
    save start without state; saved ones that are gone are dropped; a saved moment whose
    shape differs from its parameter's is refused. Names that start with a prefix in `skip`
    ("head.": a layer replaced or resized for fine-tuning) start without state too.
    Returns (names that start without state, saved names whose state is dropped)."""
    groups = optimizer.param_groups
    for where, gs in (("this optimizer", groups), ("the checkpoint", saved["param_groups"])):
        if any("param_names" not in g for g in gs):
            raise ValueError(f"{where} has no param_names: build the optimizer from "
                             "model.named_parameters() (torch 2.6 or later)")
    check_group_count(optimizer, saved)
    by_name = {plain_name(name): saved["state"][i]
               for g in saved["param_groups"] for i, name in zip(g["params"], g["param_names"])
               if i in saved["state"]}
    state, new_groups, index, found = {}, [], 0, set()
    for group, saved_group in zip(groups, saved["param_groups"]):
        for p, name in zip(group["params"], group["param_names"]):
            plain = plain_name(name)
            entry = None if plain.startswith(tuple(skip)) else by_name.get(plain)
            if entry is not None:
                for key, value in entry.items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                        raise ValueError(f"{name}: saved {key} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(p.shape)}")
                state[index] = entry
                found.add(plain)
            index += 1
        hyperparameters = {k: v for k, v in saved_group.items() if k not in ("params", "param_names")}
        new_groups.append({**hyperparameters, "param_names": list(group["param_names"]),
                           "params": list(range(index - len(group["params"]), index))})
    optimizer.load_state_dict({"state": state, "param_groups": new_groups})
    names = [plain_name(n) for g in groups for n in g["param_names"]]
    return [n for n in names if n not in found], sorted(set(by_name) - found)
# --8<-- [end:load_by_name]


# --8<-- [start:check_same_parameters]
def check_same_parameters(optimizer, saved):
    """Raise ValueError if optimizer.load_state_dict(saved) would hand a parameter the state
    of another: that method matches by position and checks only the counts. Call it before.

    Compares, group by group and position by position, the group names (a "name" key, if
    the groups have one), the parameter names (`param_names`, wrapper prefixes aside) and
    the shapes of the saved moments with those of the parameters."""
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
            for key, value in saved["state"].get(i, {}).items():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(f"group {g}: {name or 'parameter ' + str(i)} has shape "
                                     f"{tuple(p.shape)}, its saved {key} {tuple(value.shape)}")
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

    own = {plain_name(k): k for k in model.state_dict()}
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

# Troubleshooting: old and foreign checkpoint files (whole pickled models, files that are not
# checkpoints, numpy objects). Page: docs/troubleshooting/old-files.md (and .ja.md); sections
# in page order. The page shows some sections raising; here they are wrapped in try/except
# (not on the page) so that the file runs on as a script.
# --8<-- [start:whole_model_save]
import importlib
import os
import sys

import torch

# The model's code lives in a module of its own, as in a real project: oldcode/mymodels.py.
os.makedirs("oldcode", exist_ok=True)
with open("oldcode/mymodels.py", "w") as f:
    f.write(
        "import torch.nn as nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1 = nn.Linear(4, 8)\n"
        "        self.fc2 = nn.Linear(8, 2)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc2(self.fc1(x).relu())\n")
sys.path.insert(0, os.path.abspath("oldcode"))
import mymodels  # noqa: E402

torch.manual_seed(0)
model = mymodels.Net()
torch.save(model, "whole_model.pt")  # the whole object: pickled by its class's name
# --8<-- [end:whole_model_save]

# --8<-- [start:weights_only_whole_model]
def what_torch_says(path):
    """How torch.load(path, weights_only=True) fails, in one line: the exception and the
    line that names what it found (weights_only errors put it after 'WeightsUnpickler
    error:'; the advice around it is the same for every file)."""
    try:
        torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - we print what each file gives
        text = str(e)
        if "WeightsUnpickler error:" in text:
            text = text.split("WeightsUnpickler error:", 1)[1]
        line = next((l.strip() for l in text.splitlines() if l.strip()), "")
        line = line.split(". This is an internal miniz error")[0]
        return f"{type(e).__name__}: {line}" if line else type(e).__name__
    return "loads"


print(what_torch_says("whole_model.pt"))
# --8<-- [end:weights_only_whole_model]

# --8<-- [start:allowlist_class]
# Only for a file you trust: allow the two classes the file names, for this one load.
with torch.serialization.safe_globals([mymodels.Net, torch.nn.Linear]):
    loaded = torch.load("whole_model.pt", weights_only=True)
print(type(loaded).__name__, torch.equal(loaded.fc1.weight, model.fc1.weight))
# --8<-- [end:allowlist_class]

# --8<-- [start:renamed_class]
# Later, the class is renamed Classifier in the same module.
with open("oldcode/mymodels.py", "w") as f:
    f.write(
        "import torch.nn as nn\n\n\n"
        "class Classifier(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1 = nn.Linear(4, 8)\n"
        "        self.fc2 = nn.Linear(8, 2)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc2(self.fc1(x).relu())\n")
del sys.modules["mymodels"]  # as a new process would: import the module as it is now
importlib.invalidate_caches()
import mymodels  # noqa: E402,F811


def short(error):
    """The error as Python prints it, with the code directory (different on every
    machine) shortened to '...'."""
    return f"{type(error).__name__}: {error}".replace(os.path.abspath("oldcode"), "...")


try:
    torch.load("whole_model.pt", weights_only=False)
except AttributeError as e:
    print(short(e))
# --8<-- [end:renamed_class]

# --8<-- [start:moved_module]
# Later still, the module itself moves (or the file is loaded in another project).
os.remove("oldcode/mymodels.py")
del sys.modules["mymodels"]
importlib.invalidate_caches()

try:
    torch.load("whole_model.pt", weights_only=False)
except ModuleNotFoundError as e:
    print(short(e))
# --8<-- [end:moved_module]

# --8<-- [start:convert_whole_model]
import pickle
import types

from checkpoint_files import atomic_write


def convert_whole_model(path, out, stand_ins):
    """Run once, on a file you trust: load a pickled model and save its state_dict.

    `stand_ins` maps the names the file uses ("mymodels.Net") to a class to build instead.
    `torch.nn.Module` itself will do: the file restores the module's attributes
    (`_parameters`, `_modules`, `_buffers`), and `state_dict()` needs nothing more, so the
    old code is not needed. This is plain unpickling (weights_only=False): it runs whatever
    the file asks for; never use it on a file from someone you do not trust.
    """
    names = {tuple(name.rsplit(".", 1)): cls for name, cls in stand_ins.items()}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in names:
                return names[(module, name)]
            return super().find_class(module, name)

    renaming = types.ModuleType("renaming_pickle")  # torch.load takes a pickle module
    renaming.Unpickler, renaming.load = Unpickler, pickle.load
    old = torch.load(path, map_location="cpu", weights_only=False, pickle_module=renaming)
    state_dict = old.state_dict()
    atomic_write(out, lambda f: torch.save(state_dict, f))
    return list(state_dict)

# --8<-- [end:convert_whole_model]

# --8<-- [start:convert_run]
print(convert_whole_model("whole_model.pt", "model_state.pt", {"mymodels.Net": torch.nn.Module}))
# --8<-- [end:convert_run]

# --8<-- [start:load_converted]
import torch.nn as nn


class Classifier(nn.Module):  # today's code, wherever it lives
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


classifier = Classifier()
classifier.load_state_dict(torch.load("model_state.pt", weights_only=True))
x = torch.randn(3, 4)
print(torch.equal(classifier(x), model(x)))
# --8<-- [end:load_converted]

# --8<-- [start:not_checkpoints]
import hashlib

torch.save(classifier.state_dict(), "real.pt")
with open("real.pt", "rb") as f:
    data = f.read()

# What a clone without Git LFS leaves in place of the file: a three-line text file.
with open("lfs_pointer.pt", "w") as f:
    f.write("version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n")
# What a download saves when the server answers with a page (login, error, redirect).
with open("download.pt", "w") as f:
    f.write("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
            "<body>...</body></html>\n")
open("empty.pt", "wb").close()  # a save or a copy that wrote nothing
with open("truncated.pt", "wb") as f:  # a copy cut short
    f.write(data[: len(data) // 2])


for name in ["lfs_pointer.pt", "download.pt", "empty.pt", "truncated.pt"]:
    print(f"{name:15} {what_torch_says(name)}")
# --8<-- [end:not_checkpoints]

# --8<-- [start:describe_checkpoint_file]
import struct
import zipfile

from checkpoint_files import CheckpointError, load_checkpoint  # noqa: F811


def describe_checkpoint_file(path):
    """What is wrong with `path` as a checkpoint, in words, or None if it looks like one.

    Reads only the first bytes (and, for a zip archive, its directory at the end), so it
    is cheap enough to run before every load.
    """
    if not os.path.exists(path):
        return "no such file"
    size = os.path.getsize(path)
    if size == 0:
        return ("the file is empty (0 bytes): a save or a copy was interrupted. "
                "Load an older checkpoint, or copy the file again.")
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return (f"this is a Git LFS pointer ({size} bytes), not the checkpoint: the "
                "repository was cloned without Git LFS. Run `git lfs install` and "
                "`git lfs pull` in the clone.")
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<?xml")):
        return (f"this is an HTML page ({size} bytes), not a checkpoint: the download "
                "saved a login, error or redirect page. Download the file itself again "
                "(the direct link to the file) and compare its size with the original's.")
    if head.startswith(b"PK\x03\x04"):  # a zip archive: torch.save's format since 1.6
        if not zipfile.is_zipfile(path):
            return (f"the zip archive is truncated ({size} bytes, its directory at the end "
                    "is missing): the save or the copy stopped early. Load an older "
                    "checkpoint, or copy the file again.")
        with zipfile.ZipFile(path) as z:
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist()):
                return "a zip archive, but not one written by torch.save (no data.pkl in it)"
        return None
    if head[:1] == b"\x80":  # a pickle: torch.save's format before 1.6
        return None
    if len(head) >= 9 and head[8:9] == b"{":
        (header,) = struct.unpack("<Q", head[:8])
        if header < size:
            return ("this is a safetensors file, not a torch.save file: load it with "
                    "safetensors.torch.load_file.")
    return f"not a checkpoint format that torch.load reads (it starts with {head[:16]!r})"


def load_checked(path, **kwargs):
    """load_checkpoint (checkpoint_files.py) after a look at what the file is."""
    problem = describe_checkpoint_file(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return load_checkpoint(path, **kwargs)

# --8<-- [end:describe_checkpoint_file]

# --8<-- [start:describe_run]
for name in ["lfs_pointer.pt", "download.pt", "empty.pt", "truncated.pt"]:
    try:
        load_checked(name)
    except CheckpointError as e:
        print(e)
print(sorted(load_checked("real.pt")))
# --8<-- [end:describe_run]

# --8<-- [start:numpy_old_file]
import numpy as np

# An old training script saved numpy objects as they were.
np.random.seed(0)
torch.save({"model": classifier.state_dict(),
            "numpy_rng": np.random.get_state(),  # a tuple that holds a uint32 array
            "best_loss": np.float64(0.25),  # a numpy scalar
            "val_losses": np.array([0.5, 0.25])},  # an array
           "old_numpy.pt")
print(sorted(torch.serialization.get_unsafe_globals_in_checkpoint("old_numpy.pt")))
# --8<-- [end:numpy_old_file]

# --8<-- [start:numpy1_file]
import zipfile


def as_numpy1_wrote_it(path, out):
    """Copy a file saved under NumPy 2 as NumPy 1.x wrote it: the same bytes, but for the
    module path that NumPy 2 renamed (numpy.core -> numpy._core) in the pickle."""
    with zipfile.ZipFile(path) as z:
        records = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(out, "w") as z:
        for info, data in records:
            if info.filename.endswith("/data.pkl"):
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
            z.writestr(info, data)


as_numpy1_wrote_it("old_numpy.pt", "old_numpy1.pt")
print(what_torch_says("old_numpy1.pt"))
print(sorted(torch.serialization.get_unsafe_globals_in_checkpoint("old_numpy1.pt")))
# --8<-- [end:numpy1_file]

# --8<-- [start:numpy1_tuple]
from numpy._core.multiarray import _reconstruct

# The function itself, as the message advises: allowed as numpy._core.multiarray._reconstruct.
with torch.serialization.safe_globals([_reconstruct]):
    print(what_torch_says("old_numpy1.pt"))
# The function under the name the file uses: allowed; the next refusal is the next global.
with torch.serialization.safe_globals([(_reconstruct, "numpy.core.multiarray._reconstruct")]):
    print(what_torch_says("old_numpy1.pt"))
# --8<-- [end:numpy1_tuple]

# --8<-- [start:numpy_globals_needed]
import re

from numpy._core.multiarray import _reconstruct, scalar

# What numpy's arrays, dtypes and scalars need, under each name a file may use for them:
# NumPy 2 writes numpy._core.multiarray, NumPy 1.x numpy.core.multiarray.
NUMPY_GLOBALS = {
    "numpy._core.multiarray._reconstruct": _reconstruct,
    "numpy.core.multiarray._reconstruct": _reconstruct,
    "numpy._core.multiarray.scalar": scalar,
    "numpy.core.multiarray.scalar": scalar,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    **{f"numpy.dtypes.{kind}DType": getattr(np.dtypes, f"{kind}DType") for kind in (
        "Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
        "Float16", "Float32", "Float64", "Complex64", "Complex128")},
}


def globals_needed(path):
    """Follow torch.load's refusals, allowing numpy's globals only; returns the allowlist
    for torch.serialization.safe_globals. A name from NUMPY_GLOBALS that differs from the
    object's own (NumPy 1.x's numpy.core...) goes in as the pair (object, name).

    Any other name stops it: the file holds more than numpy objects (a class, a function
    that allowlisting would let the file call), and nothing of it is loaded.
    """
    allowed, names = [], set()
    while True:
        try:
            with torch.serialization.safe_globals(allowed):
                torch.load(path, weights_only=True)
            return allowed
        except pickle.UnpicklingError as e:
            found = re.search(r"GLOBAL (\S+) was not an allowed global"
                              r"|but got <class '([^']+)'>", str(e))
            if found is None:
                raise
            name = found[1] or found[2]
            if name not in NUMPY_GLOBALS or name in names:
                raise CheckpointError(
                    f"{path}: the file names {name}, which is not one of numpy's objects: "
                    "do not allow it (an allowed function runs with the file's arguments). "
                    "Load the file only if you know what that is, or ask for a file saved "
                    "with plain values") from None
            obj = NUMPY_GLOBALS[name]
            names.add(name)
            own = f"{obj.__module__}.{obj.__qualname__}"
            allowed.append(obj if own == name else (obj, name))

# --8<-- [end:numpy_globals_needed]

# --8<-- [start:numpy_globals_run]
def allowlist_names(allowed):
    return [f"({g[0].__name__}, {g[1]!r})" if isinstance(g, tuple)
            else f"{g.__module__}.{g.__name__}" for g in allowed]


print(allowlist_names(globals_needed("old_numpy.pt")))  # written under NumPy 2
needed = globals_needed("old_numpy1.pt")  # written under NumPy 1.x
print(allowlist_names(needed))
# --8<-- [end:numpy_globals_run]

# --8<-- [start:numpy_foreign]
import time
import timeit


class Payload:
    """A file from elsewhere: it names timeit.timeit, which runs a statement of its choosing."""

    def __reduce__(self):
        return (timeit.timeit, ("open('payload_ran.txt', 'w').close()", "pass",
                                time.perf_counter, 1))


torch.save({"val_losses": np.array([0.5, 0.25]), "extra": Payload()}, "foreign.pt")
try:
    globals_needed("foreign.pt")
except CheckpointError as e:
    print(e)
print(os.path.exists("payload_ran.txt"))  # nothing ran
# --8<-- [end:numpy_foreign]

# --8<-- [start:numpy_plain]
def plain(value):
    """numpy objects -> tensors and Python values, recursively; the rest unchanged."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value

# --8<-- [end:numpy_plain]

# --8<-- [start:numpy_convert]
# Once, on the trusted old file: load with exactly the globals it needs, convert, save.
with torch.serialization.safe_globals(needed):
    old = torch.load("old_numpy1.pt", weights_only=True)
atomic_write("converted.pt", lambda f: torch.save(plain(old), f))

new = torch.load("converted.pt", weights_only=True)  # nothing to allow any more
print({k: type(v).__name__ for k, v in new.items() if k != "model"})
print(new["numpy_rng"][1].dtype, new["best_loss"])

# The converted state still restores numpy's generator exactly.
name, keys, pos, has_gauss, cached = new["numpy_rng"]
np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
restored = np.random.rand(3)
np.random.seed(0)  # the state the old script saved
print(np.array_equal(restored, np.random.rand(3)))
# --8<-- [end:numpy_convert]

# --8<-- [start:numpy_save_plain]
import numpy as np
import torch

rng = np.random.default_rng(0)  # a Generator: its state is a dict of ints and str
best_loss = np.float64(0.25)
checkpoint = {
    "numpy_rng": rng.bit_generator.state,
    "best_loss": float(best_loss),  # a Python float
    "val_losses": torch.tensor([0.5, 0.25]),  # a tensor, not an array
}
torch.save(checkpoint, "plain.pt")
torch.load("plain.pt", weights_only=True)  # loads with nothing allowed
# --8<-- [end:numpy_save_plain]

"""Claims of docs/troubleshooting/old-files.md that its blocks do not assert themselves.

The functions are the page's own sections of snippets/troubleshooting/old_files.py. The old
messages' texts were read from the released packages of the versions the page names (the
Python source of torch/serialization.py and torch/_weights_only_unpickler.py, and the string
literals compiled into the C++ library); OLD_MESSAGES holds those literals as found, and the
test checks that the page quotes the messages they make. Today's messages are triggered.
"""

from __future__ import annotations

import ast
import importlib
import io
import os
import pickle
import re
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn

from cookbook_testing.checkpoints import tagged_checkpoint, trained_adam
from cookbook_testing.devices import cuda_available
from cookbook_testing.pages import ROOT, SNIPPETS, assert_quoted, section_source

PAGE = "troubleshooting/old-files.md"
SNIPPET = SNIPPETS / "troubleshooting" / "old_files.py"


def quoted(*texts):
    assert_quoted(PAGE, *texts)


@pytest.fixture
def ns(tmp_path, monkeypatch):
    """The page's check and conversion functions, defined in a fresh namespace."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "old_files_test"}
    src = section_source(SNIPPET, "weights_only_whole_model", "convert_whole_model",
                         "describe_checkpoint_file", "numpy1_file", "numpy_globals_needed",
                         "numpy_plain")
    # Only the definitions (imports, functions, classes, CONSTANTS): the sections'
    # demonstrations need files made by earlier blocks.
    tree = ast.parse(src)
    tree.body = [node for node in tree.body if isinstance(
        node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) or (
        isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id.isupper() for t in node.targets))]
    defs = ast.unparse(tree)
    header = ("import importlib, os, pickle, re, struct, types, zipfile\nimport numpy as np\n"
              "import torch\nfrom checkpoint_files import CheckpointError, atomic_write, "
              "load_checkpoint\n")
    exec(compile(header + defs, str(SNIPPET), "exec"), namespace)
    return namespace


@pytest.fixture
def mymodels(tmp_path, monkeypatch):
    """A module `mymodels` with a class Net, importable for the test, removed after it."""
    (tmp_path / "mymodels.py").write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.fc1 = nn.Linear(4, 8)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    sys.modules.pop("mymodels", None)
    module = importlib.import_module("mymodels")
    yield module
    sys.modules.pop("mymodels", None)


def test_whole_model_weights_only_message(tmp_path, mymodels):
    torch.save(mymodels.Net(), tmp_path / "whole.pt")
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(tmp_path / "whole.pt", weights_only=True)
    quoted(f"_pickle.UnpicklingError: {info.value}")
    # the class alone is not enough: every module class inside it is needed too
    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear"):
        with torch.serialization.safe_globals([mymodels.Net]):
            torch.load(tmp_path / "whole.pt", weights_only=True)
    # safe_globals allows only inside its block
    with torch.serialization.safe_globals([mymodels.Net, nn.Linear]):
        torch.load(tmp_path / "whole.pt", weights_only=True)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "whole.pt", weights_only=True)


def test_renamed_class_message_names_the_full_path(tmp_path, mymodels):
    torch.save(mymodels.Net(), tmp_path / "whole.pt")
    del mymodels.Net
    with pytest.raises(AttributeError) as info:
        torch.load(tmp_path / "whole.pt", weights_only=False)
    path = os.path.join(str(tmp_path), "mymodels.py")
    assert str(info.value) == f"Can't get attribute 'Net' on <module 'mymodels' from '{path}'>"
    quoted(f"AttributeError: {info.value}".replace(str(tmp_path), "..."))


class Recorder:
    """A harmless class, allowlisted below: records how the file made it run."""

    calls = []

    def __init__(self, *args):
        Recorder.calls.append(args)


class _Call:
    def __reduce__(self):
        return (Recorder, ("chosen by the file", 42))


def record(*args):
    """A harmless function, allowlisted below."""
    Recorder.calls.append(("function",) + args)


class _CallFunction:
    def __reduce__(self):
        return (record, ("also chosen by the file",))


def test_an_allowlisted_class_runs_with_the_files_arguments_and_attributes(tmp_path, mymodels):
    # The file calls the class with arguments of its choosing: __init__ runs with them.
    torch.save({"x": _Call()}, tmp_path / "call.pt")
    Recorder.calls.clear()
    with torch.serialization.safe_globals([Recorder]):
        torch.load(tmp_path / "call.pt", weights_only=True)
    assert Recorder.calls == [("chosen by the file", 42)]
    # An allowlisted function: the file calls it with its own arguments.
    torch.save([_CallFunction()], tmp_path / "function.pt")
    with torch.serialization.safe_globals([record]):
        torch.load(tmp_path / "function.pt", weights_only=True)
    assert Recorder.calls[-1] == ("function", "also chosen by the file")
    # The file sets any attributes on an instance of an allowlisted class.
    model = mymodels.Net()
    model.training = "anything the file wants"
    model.__dict__["extra"] = torch.ones(2)
    torch.save(model, tmp_path / "attrs.pt")
    with torch.serialization.safe_globals([mymodels.Net, nn.Linear]):
        loaded = torch.load(tmp_path / "attrs.pt", weights_only=True)
    assert loaded.training == "anything the file wants" and torch.equal(loaded.extra, torch.ones(2))


def test_convert_whole_model_needs_no_old_code(tmp_path, mymodels, ns):
    model = mymodels.Net()
    torch.save(model, tmp_path / "whole.pt")
    sys.modules.pop("mymodels")
    os.remove(tmp_path / "mymodels.py")
    keys = ns["convert_whole_model"](str(tmp_path / "whole.pt"), str(tmp_path / "sd.pt"),
                                     {"mymodels.Net": nn.Module})
    assert keys == ["fc1.weight", "fc1.bias"]
    state = torch.load(tmp_path / "sd.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def _bad_files(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "real.pt")
    data = (tmp_path / "real.pt").read_bytes()
    (tmp_path / "lfs.pt").write_text("version https://git-lfs.github.com/spec/v1\n"
                                     f"oid sha256:{'0' * 64}\nsize {len(data)}\n")
    (tmp_path / "page.pt").write_text("<!DOCTYPE html>\n<html></html>\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])


def test_not_checkpoint_messages_in_full(tmp_path):
    _bad_files(tmp_path)
    for name, opcode in [("lfs.pt", "v"), ("page.pt", "<")]:
        with pytest.raises(pickle.UnpicklingError) as info:
            torch.load(tmp_path / name, weights_only=True)
        assert f"Unsupported operand {ord(opcode)}" in str(info.value)
        if name == "lfs.pt":
            quoted(f"_pickle.UnpicklingError: {info.value}")
        with pytest.raises(pickle.UnpicklingError) as info:
            torch.load(tmp_path / name, weights_only=False)
        quoted(f"_pickle.UnpicklingError: {info.value}")
    with pytest.raises(EOFError) as info:
        torch.load(tmp_path / "empty.pt", weights_only=True)
    assert str(info.value) == ""
    with pytest.raises(EOFError) as info:
        torch.load(tmp_path / "empty.pt", weights_only=False)
    quoted(f"EOFError: {info.value}")
    with pytest.raises(RuntimeError) as info:
        torch.load(tmp_path / "cut.pt", weights_only=True)
    quoted(f"RuntimeError: {info.value}")


def test_describe_checkpoint_file_other_formats(tmp_path, ns):
    describe = ns["describe_checkpoint_file"]
    _bad_files(tmp_path)
    for name in ["lfs.pt", "page.pt", "empty.pt", "cut.pt"]:
        assert describe(str(tmp_path / name))
    assert describe(str(tmp_path / "real.pt")) is None
    assert describe(str(tmp_path / "missing.pt")) == "no such file"
    # damage inside the data, zip directory intact: the check passes, the checksum does not
    from checkpoint_files import CheckpointError, save_checkpoint
    path = save_checkpoint({"w": torch.zeros(1000)}, str(tmp_path / "ckpts"), 1)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert describe(path) is None
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        ns["load_checked"](path)
    # torch.save's format before 1.6 (a pickle) passes and loads
    torch.save({"w": torch.ones(3)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert (tmp_path / "legacy.pt").read_bytes()[:1] == b"\x80"
    assert describe(str(tmp_path / "legacy.pt")) is None
    assert torch.equal(ns["load_checked"](str(tmp_path / "legacy.pt"))["w"], torch.ones(3))
    # safetensors, a zip that torch.save did not write, anything else
    from safetensors.torch import save_file
    save_file({"w": torch.ones(3)}, str(tmp_path / "w.safetensors"))
    assert "safetensors" in describe(str(tmp_path / "w.safetensors"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    assert "not one written by torch.save" in describe(str(tmp_path / "other.zip"))
    (tmp_path / "noise.pt").write_bytes(bytes(range(7, 64)))
    assert describe(str(tmp_path / "noise.pt")).startswith("not a checkpoint format")


def test_numpy_globals_are_all_needed_and_the_listing_undercounts(tmp_path, ns):
    np.random.seed(0)
    torch.save({"rng": np.random.get_state(), "loss": np.float64(0.25),
                "arr": np.array([0.5, 0.25])}, tmp_path / "old.pt")
    needed = ns["globals_needed"](str(tmp_path / "old.pt"))
    names = {f"{g.__module__}.{g.__name__}" for g in needed}
    listed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / "old.pt")))
    assert listed < names
    for left_out in needed:  # each one is needed
        with pytest.raises(pickle.UnpicklingError):
            with torch.serialization.safe_globals([g for g in needed if g is not left_out]):
                torch.load(tmp_path / "old.pt", weights_only=True)
    # the fourth refusal has the other form, quoted on the page
    with pytest.raises(pickle.UnpicklingError) as info:
        with torch.serialization.safe_globals(needed[:3]):
            torch.load(tmp_path / "old.pt", weights_only=True)
    line = next(l.strip() for l in str(info.value).splitlines() if l.startswith("Can only build"))
    quoted(line)


NUMPY1_FILE = ROOT / "tests" / "data" / "numpy-1.26.4.pt"  # tests/programs/write_numpy1_file.py


def _numpy1_content():
    np.random.seed(0)
    return {"numpy_rng": np.random.get_state(), "best_loss": np.float64(0.25),
            "val_losses": np.array([0.5, 0.25])}


def test_the_page_makes_the_numpy1_file_as_numpy_1_wrote_it(tmp_path, ns):
    """The page turns a NumPy 2 file into a NumPy 1.x one; a file really written under NumPy
    1.26.4 (same content, same name) has the same pickle and the same data records."""
    (tmp_path / "new").mkdir()
    torch.save(_numpy1_content(), tmp_path / "new" / NUMPY1_FILE.name)
    ns["as_numpy1_wrote_it"](str(tmp_path / "new" / NUMPY1_FILE.name), str(tmp_path / "made.pt"))

    def records(path):
        with zipfile.ZipFile(path) as z:  # the serialization id is random on every save
            return {n: z.read(n) for n in z.namelist() if not n.endswith("serialization_id")}

    made, real = records(tmp_path / "made.pt"), records(NUMPY1_FILE)
    assert made == real
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in real["numpy-1.26.4/data.pkl"]


def test_a_numpy1_file_loads_only_with_the_tuple_form(tmp_path, ns):
    from numpy._core.multiarray import _reconstruct, scalar

    listed = torch.serialization.get_unsafe_globals_in_checkpoint(str(NUMPY1_FILE))
    assert "numpy.core.multiarray._reconstruct" in listed
    # Under NumPy 2 the objects themselves are allowed under their new names only.
    objects = [_reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType, scalar,
               np.dtypes.Float64DType]
    with pytest.raises(pickle.UnpicklingError) as info:
        with torch.serialization.safe_globals(objects):
            torch.load(NUMPY1_FILE, weights_only=True)
    message = "Unsupported global: GLOBAL numpy.core.multiarray._reconstruct"
    assert message in str(info.value)
    quoted(message)  # the old-messages table: the name is the one in the file
    needed = ns["globals_needed"](str(NUMPY1_FILE))
    assert (_reconstruct, "numpy.core.multiarray._reconstruct") in needed
    assert (scalar, "numpy.core.multiarray.scalar") in needed
    with torch.serialization.safe_globals(needed):
        old = torch.load(NUMPY1_FILE, weights_only=True)
    expected = _numpy1_content()
    assert np.array_equal(old["numpy_rng"][1], expected["numpy_rng"][1])
    assert old["best_loss"] == 0.25 and np.array_equal(old["val_losses"], [0.5, 0.25])


class _Timeit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import time
        import timeit
        return (timeit.timeit, (f"open({self.target!r}, 'w').close()", "pass",
                                time.perf_counter, 1))


def test_globals_needed_allows_numpy_only_and_runs_nothing_else(tmp_path, ns):
    import time
    import timeit

    target = tmp_path / "payload_ran.txt"
    path = tmp_path / "foreign.pt"
    torch.save({"val_losses": np.array([0.5, 0.25]), "extra": _Timeit(str(target))}, path)
    with pytest.raises(ns["CheckpointError"], match=re.escape(
            f"{path}: the file names timeit.timeit, which is not one of numpy's objects")):
        ns["globals_needed"](str(path))
    assert not target.exists()
    # The payload is real: allowed as its refusals ask, the file runs it on load.
    with torch.serialization.safe_globals([timeit.timeit, time.perf_counter, *ns[
            "NUMPY_GLOBALS"].values()]):
        torch.load(path, weights_only=True)
    assert target.exists()

# The old messages, as the literals found in each release (values filled in at run time).
OLD_MESSAGES = {
    "1.1.0 TensorIterator": ("RuntimeError: " + "expected backend " + "CPU" + " and dtype " + "Float"
                             + " but got backend " + "CUDA" + " and dtype " + "Float"),
    "1.2.0 TensorIterator": ("RuntimeError: " + "expected device " + "cpu" + " and dtype " + "Float"
                             + " but got device " + "cuda:0" + " and dtype " + "Float"),
    "1.3.0-1.4.0 TensorIterator": ("RuntimeError: " + "expected device " + "cpu"
                                   + " but got device " + "cuda:0"),
    "1.0.0-1.1.0 serialization.py": (
        "RuntimeError: " + "Attempting to deserialize object on a CUDA "
        "device but torch.cuda.is_available() is False. "
        "If you are running on a CPU-only machine, "
        "please use torch.load with map_location='cpu' "
        "to map your storages to the CPU."),
    "1.13.0-2.3.0 serialization.py + _weights_only_unpickler.py": (
        "_pickle.UnpicklingError: "
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False`"
        " will likely succeed, but it can result in arbitrary code execution."
        "Do it only if you get the file from a trusted source. WeightsUnpickler error: "
        + "Unsupported class " + "numpy.core.multiarray._reconstruct"),
}


def test_old_messages_are_quoted_as_the_releases_wrote_them():
    quoted(*OLD_MESSAGES.values())
    quoted("exp_avg.mul_(beta1).add_(1 - beta1, grad)")  # Adam's line in 1.1.0 to 1.4.0


@pytest.mark.skipif(cuda_available(), reason="with CUDA present a CUDA-tagged file loads")
def test_todays_cuda_checkpoint_on_cpu_message(tmp_path):
    tagged_checkpoint(tmp_path / "gpu.pt", "cuda:0")
    with pytest.raises(RuntimeError) as info:
        torch.load(tmp_path / "gpu.pt", weights_only=True)
    quoted(f"RuntimeError: {info.value}")


def test_todays_weights_only_numpy_message():
    buffer = io.BytesIO()
    torch.save({"rng": np.random.get_state()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(buffer, weights_only=True)
    assert "Unsupported global: GLOBAL numpy._core.multiarray._reconstruct" in str(info.value)
    quoted("Unsupported global: GLOBAL numpy._core.multiarray._reconstruct")


@pytest.mark.cuda
def test_todays_device_mismatch_message():
    """The mistake of the first three rows: state loaded on the CPU, model moved after."""
    _, saved = trained_adam()
    model = nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.load_state_dict(saved.state_dict())
    model.to("cuda")
    model(torch.randn(8, 4, device="cuda")).sum().backward()
    with pytest.raises(RuntimeError) as info:
        optimizer.step()
    quoted(f"RuntimeError: {info.value}")

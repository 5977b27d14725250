# Troubleshooting, weights_only=True and what it refuses.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:weights_only_numpy]
import pickle

import numpy as np


def weights_only_error(path):
    """The line of torch.load's error that names what it refused, or None if it loads."""
    try:
        torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:
        return next(line.strip() for line in str(error).split("\n") if "Unsupported" in line)
    return None


torch.save({"model": model.state_dict(), "numpy_rng": np.random.get_state()}, "numpy_rng.pt")
print(weights_only_error("numpy_rng.pt"))
# --8<-- [end:weights_only_numpy]

# --8<-- [start:weights_only_scalar]
best_loss = np.float64(0.25)  # e.g. np.mean() of the losses of an epoch
torch.save({"model": model.state_dict(), "best_loss": best_loss}, "numpy_scalar.pt")
print(weights_only_error("numpy_scalar.pt"))
# --8<-- [end:weights_only_scalar]

# --8<-- [start:weights_only_namespace]
import argparse

args = argparse.Namespace(lr=1e-3, epochs=10)
torch.save({"model": model.state_dict(), "args": args}, "namespace.pt")
print(weights_only_error("namespace.pt"))
# --8<-- [end:weights_only_namespace]

# --8<-- [start:weights_only_plain_types]
rng = np.random.default_rng(0)
checkpoint = {
    "model": model.state_dict(),
    "best_loss": float(best_loss),  # a Python float
    "args": vars(args),  # a dict of plain values
    "numpy_rng": rng.bit_generator.state,  # a dict of ints and str
    "torch_rng": torch.get_rng_state(),  # a tensor
}
torch.save(checkpoint, "plain.pt")
assert weights_only_error("plain.pt") is None

loaded = torch.load("plain.pt", weights_only=True)
rng2 = np.random.default_rng()
rng2.bit_generator.state = loaded["numpy_rng"]
assert rng2.random() == rng.random()
# --8<-- [end:weights_only_plain_types]

# --8<-- [start:weights_only_allowlist]
from numpy._core.multiarray import _reconstruct

# Only for a file you trust: these globals are allowed during this one load.
with torch.serialization.safe_globals([_reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]):
    loaded = torch.load("numpy_rng.pt", weights_only=True)
assert loaded["numpy_rng"][0] == "MT19937"
# --8<-- [end:weights_only_allowlist]

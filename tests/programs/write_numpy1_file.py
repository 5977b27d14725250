"""Writes tests/data/numpy-1.26.4.pt: a checkpoint really written under NumPy 1.x.

NumPy 1.26.4 cannot be installed beside the pinned NumPy 2, so the file was made once, with
the pinned torch and NumPy 1.26.4 unpacked from its wheel (not installed):

    pip download numpy==1.26.4 --no-deps --only-binary=:all: -d /tmp/np1
    python -c "import zipfile,glob; zipfile.ZipFile(glob.glob('/tmp/np1/*.whl')[0]).extractall('/tmp/np1/site')"
    PYTHONPATH=/tmp/np1/site python tests/programs/write_numpy1_file.py tests/data/numpy-1.26.4.pt

tests/troubleshooting/test_old_files.py checks that the page's way of making such a file under NumPy 2
gives the same pickle, and loads this one with the page's allowlist.
"""

import sys

import numpy as np
import torch

assert np.__version__ == "1.26.4", np.__version__
np.random.seed(0)
torch.save({"numpy_rng": np.random.get_state(),  # what the page's old file holds, but a model
            "best_loss": np.float64(0.25),
            "val_losses": np.array([0.5, 0.25])}, sys.argv[1])

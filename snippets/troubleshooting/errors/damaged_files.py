# Troubleshooting, truncated checkpoint files.
# Page: docs/troubleshooting/errors.md (and .ja.md); sections in page order. Sections that the
# page shows raising are wrapped in expect_error(...) here, so that the file runs on.
# As a script it first builds the running example, which the page shows once at the top.
from running_example import *  # noqa: F403 - Net, train, model, optimizer, checkpoint, torch


# --8<-- [start:truncated]
torch.save(model.state_dict(), "model.pt")
with open("model.pt", "rb") as f:
    data = f.read()
with open("truncated.pt", "wb") as f:  # what a save interrupted half-way leaves
    f.write(data[: len(data) // 2])
# --8<-- [end:truncated]

with expect_error(RuntimeError, "failed finding central directory"):
    # --8<-- [start:truncated_load]
    torch.load("truncated.pt", weights_only=True)
    # --8<-- [end:truncated_load]

# --8<-- [start:atomic_save]
# atomic_write from the safe-checkpoints recipe (snippets/lib/checkpoint_files.py):
# a temporary file, fsync, os.replace, and the directory fsync'ed.
from checkpoint_files import atomic_write

atomic_write("model.pt", lambda f: torch.save(model.state_dict(), f))
model.load_state_dict(torch.load("model.pt", weights_only=True))
# --8<-- [end:atomic_save]

"""Load a checkpoint with mmap=True into a model and Adam, then save over it.

`python mmap_save.py in-place` saves with torch.save to the same path; `python mmap_save.py
recipe` runs the save-and-resume recipe's own save section (read from its snippet file).
Then one more optimizer step. tests/recipes/test_save_and_resume.py checks the exit status.
"""

import os  # noqa: F401 - the recipe's save section uses it
import sys

import torch

from cookbook_testing.pages import SNIPPETS, section_source

model = torch.nn.Linear(256, 256)
optimizer = torch.optim.Adam(model.parameters())
model(torch.randn(4, 256)).sum().backward()
optimizer.step()
scheduler, epoch = torch.optim.lr_scheduler.StepLR(optimizer, 1), 0
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pt")
mapped = torch.load("checkpoint.pt", mmap=True, weights_only=True)
model.load_state_dict(mapped["model"])
optimizer.load_state_dict(mapped["optimizer"])  # Adam's moments: pages of the mapped file

if sys.argv[1] == "in-place":
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "checkpoint.pt")
else:
    exec(section_source(SNIPPETS / "recipes" / "save_and_resume.py", "save_checkpoint"))
optimizer.step()

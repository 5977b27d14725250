"""One half of an exact-resume run, in a fresh interpreter, with the page's own definitions
(the setup, save and load sections of snippets/recipes/exact_resume.py).

    python exact_resume_half.py cpu save     # 25 steps and a checkpoint; the uninterrupted run
    python exact_resume_half.py cpu resume   # resume from the checkpoint and finish
"""

import sys

import torch

from cookbook_testing.pages import SNIPPETS, section_source

exec(section_source(SNIPPETS / "recipes" / "exact_resume.py", "setup", "save", "load"))

device = sys.argv[1]
if device == "cuda":
    torch.use_deterministic_algorithms(True)
if sys.argv[2] == "save":
    first = Trainer(device=device)  # noqa: F821 - defined by the page's sections
    first.train_until(25)
    save_checkpoint(first, "checkpoint.pt")  # noqa: F821
    reference = Trainer(device=device)  # noqa: F821
    reference.train_until(TOTAL_STEPS)  # noqa: F821
    torch.save(reference.model.state_dict(), "reference.pt")
else:
    resumed = resume("checkpoint.pt", device=device)  # noqa: F821
    resumed.train_until(TOTAL_STEPS)  # noqa: F821
    torch.save(resumed.model.state_dict(), "resumed.pt")

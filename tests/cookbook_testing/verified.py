"""What each page was verified with: written by a test run (`--record-verified`), read by the
site build (hooks/sitebuild/verified.py), never typed.

outputs/verified/cpu.json     the pinned torch on a CPU (`make test`)
outputs/verified/newest.json  another torch on a CPU (the weekly job's newest release)
outputs/verified/gpu.json     a GPU machine (`make test-gpu`)

Each file maps a page to the last run in which all its blocks (and its notebook) passed:
the date, torch, the device, and how many blocks ran. A page with a failing block is
dropped from the file; pages the run did not reach keep their earlier entry.

A test counts for a page when it carries the mark `verifies(page)` (the page blocks of
tests/harness/test_pages.py, the notebook runs of tests/notebooks/test_notebooks.py); tests/conftest.py adds
the page to each report, so nothing here reads test names."""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass

from cookbook_testing.pages import DOCS, ROOT, page_blocks

VERIFIED_DIR = "outputs/verified"
VERIFIED = ROOT / VERIFIED_DIR
@dataclass
class Outcome:
    passed: int = 0
    cuda: int = 0
    cuda_skipped: int = 0
    skipped: int = 0  # with a reason: no GPU here, or not two of them
    failed: int = 0

    def add(self, outcome: str, cuda: bool) -> None:
        if outcome == "failed":
            self.failed += 1
        elif outcome == "skipped":
            self.skipped += 1
            self.cuda_skipped += cuda
        else:
            self.passed += 1
            self.cuda += cuda


def pinned_torch() -> str:
    from sitebuild.facts import facts
    return facts(ROOT)["torch"]


def record(outcomes: dict[str, Outcome], gpu: bool) -> None:
    import torch

    if gpu:
        name, device = "gpu", torch.cuda.get_device_name()
    else:
        same = torch.__version__.split("+")[0] == pinned_torch()
        name, device = ("cpu" if same else "newest"), f"CPU, {platform.machine()}"
    path = VERIFIED / f"{name}.json"
    pages = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    today = datetime.date.today().isoformat()
    for page, o in outcomes.items():
        if o.failed:
            pages.pop(page, None)
            continue
        if page.endswith(".md") and o.passed + o.skipped < len(page_blocks(DOCS / page)):
            continue  # a selection of its blocks: not the page verified
        pages[page] = {"date": today, "torch": torch.__version__, "device": device,
                       "blocks": o.passed, "gpu_blocks": o.cuda + o.cuda_skipped,
                       "gpu_blocks_run": o.cuda}
    VERIFIED.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(pages.items())), indent=1) + "\n", encoding="utf-8")

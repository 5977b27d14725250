"""The "last verified" note at the end of each page, from the records that test runs write in
outputs/verified/ (tests/cookbook_testing/verified.py): never typed."""

from __future__ import annotations

import json
from pathlib import Path

TEXT = {
    "en": {
        "title": "Last verified",
        "cpu": "its {blocks} code blocks passed on {date} with PyTorch {torch} ({device})",
        "newest": "with PyTorch {torch}, a newer release, on {date} ({device})",
        "gpu": "its {gpu_blocks_run} GPU blocks ran on {date} with PyTorch {torch} on {device}",
        "no_gpu": "its {gpu_blocks} GPU blocks have not run on a GPU yet",
        "none": "Its code blocks have not been verified by a test run yet.",
        "notebook": "the notebook ran on {date} with PyTorch {torch} ({device})",
        "join": "; ", "and": "; ", "end": ".",
    },
    "ja": {
        "title": "最終確認",
        "cpu": "{date} に PyTorch {torch}（{device}）でコードブロック {blocks} 個がすべて通りました",
        "newest": "{date} に新しいリリースの PyTorch {torch}（{device}）でも通りました",
        "gpu": "GPU 用のブロック {gpu_blocks_run} 個は {date} に PyTorch {torch}、{device} で実行しました",
        "no_gpu": "GPU 用のブロック {gpu_blocks} 個は、まだ GPU で実行していません",
        "none": "このページのコードブロックは、まだテストで確認していません。",
        "notebook": "{date} に PyTorch {torch}（{device}）でノートブックを実行しました",
        "join": "。", "and": "。", "end": "。",
    },
}


def load_records(directory: Path) -> dict[str, dict]:
    return {name: json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("cpu", "newest", "gpu") if (directory / f"{name}.json").exists()}


def stamp(page: str, records: dict[str, dict], lang: str, has_code: bool) -> str:
    """The note for one page ("recipes/x.md", whatever the language), as Markdown; empty for a
    page without code."""
    t = TEXT[lang]
    cpu = records.get("cpu", {}).get(page)
    if not has_code:
        return ""
    if cpu is None:
        return _box(t, t["none"])
    key = "notebook" if page.endswith(".ipynb") else "cpu"
    parts = [t[key].format(**cpu)]
    newest = records.get("newest", {}).get(page)
    if newest and newest["torch"] != cpu["torch"]:
        parts.append(t["newest"].format(**newest))
    if cpu.get("gpu_blocks"):
        gpu = records.get("gpu", {}).get(page)
        parts.append(t["gpu"].format(**gpu) if gpu and gpu["gpu_blocks_run"]
                     else t["no_gpu"].format(**cpu))
    text = t["join"].join(parts) + t["end"]
    return _box(t, text[0].upper() + text[1:] if lang == "en" else text)


def _box(t: dict, text: str) -> str:
    return f'\n\n!!! info "{t["title"]}"\n\n    {text}\n'

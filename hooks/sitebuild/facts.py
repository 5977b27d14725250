"""Facts that pages state and that have one source: written in prose as `{{ name }}`, filled
in by the build (hooks/facts.py) and by the tests' view of a page.

    {{ torch }}         the pinned torch, from requirements.txt (`torch==X.Y.Z`): X.Y.Z
    {{ torch_minor }}   its minor release: X.Y
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sitebuild.layout import ROOT

FACT = re.compile(r"\{\{ (\w+) \}\}")


class FactError(KeyError):
    """A page names a fact that does not exist."""


@functools.cache
def facts(root: Path = ROOT) -> dict[str, str]:
    requirements = (root / "requirements.txt").read_text(encoding="utf-8")
    pin = re.search(r"^torch==(\S+)", requirements, re.M)
    if not pin:
        raise FactError(f"{root / 'requirements.txt'}: no `torch==<version>` line")
    return {"torch": pin[1], "torch_minor": ".".join(pin[1].split(".")[:2])}


def fill_in(text: str, known: dict[str, str], where: str = "") -> str:
    """The text with every `{{ name }}` replaced by its fact; an unknown name is an error."""
    def sub(m):
        if m[1] not in known:
            raise FactError(f"{where}: unknown fact {{{{ {m[1]} }}}}; the facts are "
                            f"{', '.join(sorted(known))} (hooks/sitebuild/facts.py)")
        return known[m[1]]
    return FACT.sub(sub, text)

"""A page quotes a message verbatim: the check that a test makes after triggering it."""

from __future__ import annotations

import re

from sitebuild.layout import DOCS, both_languages

from cookbook_testing.markdown import expanded

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(text: str) -> str:
    return "\n".join(line.rstrip() for line in _ANSI.sub("", text).split("\n"))


def assert_quoted(page: str, *texts: str) -> None:
    """Each text (a message as a terminal shows it) stands verbatim on the page in both
    languages, as the reader sees it: after snippet and output expansion."""
    for path in both_languages(page):
        shown = _plain(expanded(path))
        for text in texts:
            assert _plain(text) in shown, f"{path.relative_to(DOCS)} does not quote {text!r}"

"""Edit links only when the build knows the repository (REPO_URL): MkDocs rejects an edit_uri
without a repo_url, so the edit path is set here, not in mkdocs.yml. And where Colab opens a
notebook of the repository."""

from __future__ import annotations

import re

EDIT_URI = "edit/main/docs/"


def edit_uri_for(repo_url: str | None) -> str:
    return EDIT_URI if repo_url else ""


BRANCH = "main"  # the branch the edit links and the Colab links point to
GITHUB = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?")


def colab_url(repo_url: str | None, docs_path: str) -> str | None:
    """Where Colab opens docs/<docs_path> of the repository: Colab opens notebooks from GitHub
    only, so None for another host or no repository."""
    m = GITHUB.fullmatch(repo_url or "")
    if not m:
        return None
    return (f"https://colab.research.google.com/github/{m[1]}/{m[2]}/blob/{BRANCH}/docs/"
            f"{docs_path}")

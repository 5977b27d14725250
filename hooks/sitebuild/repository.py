"""Edit links only when the build knows the repository (REPO_URL): MkDocs rejects an edit_uri
without a repo_url, so the edit path is set here, not in mkdocs.yml."""

EDIT_URI = "edit/main/docs/"


def edit_uri_for(repo_url: str | None) -> str:
    return EDIT_URI if repo_url else ""

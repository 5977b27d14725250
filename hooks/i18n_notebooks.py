"""Render notebooks again when mkdocs-static-i18n is on (sitebuild.notebooks). Guarded by
tests/site/test_build.py::test_notebooks_are_rendered."""

from mkdocs.plugins import event_priority
from sitebuild.notebooks import mark_notebooks_as_pages


@event_priority(-200)  # after i18n's on_files (-100)
def on_files(files, config):
    mark_notebooks_as_pages(files)
    return files

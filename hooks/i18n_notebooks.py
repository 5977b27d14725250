"""Render notebooks again when mkdocs-static-i18n is on.

The i18n plugin re-creates every file as a plain MkDocs `File` (its `on_files` runs late),
which drops mkdocs-jupyter's notebook type: notebooks were copied as raw JSON while a strict
build still passed (ultrabug/mkdocs-static-i18n#198). Running after it, this hook marks the
notebooks as documentation pages again, so mkdocs-jupyter renders them in every language.
Guarded by tests/site/test_build.py::test_notebooks_are_rendered.
"""

from mkdocs.plugins import event_priority


def _is_page():
    return True


@event_priority(-200)  # after i18n's on_files (-100)
def on_files(files, config):
    for file in files:
        if file.src_uri.endswith(".ipynb"):
            file.is_documentation_page = _is_page
            file.is_static_page = lambda: False
    return files

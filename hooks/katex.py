"""Typeset math at build time with the self-hosted KaTeX (sitebuild.typeset); a TeX error
fails the build, naming the page."""

from mkdocs.exceptions import PluginError
from sitebuild.typeset import TypesetError, typeset


def on_page_content(content, page, config, files):
    try:
        return typeset(content, page.file.src_uri, notebook=page.file.src_uri.endswith(".ipynb"))
    except TypesetError as error:
        raise PluginError(str(error)) from error

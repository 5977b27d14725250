"""Fills in `{{ torch }}`-style facts from their one source (sitebuild.facts): the pinned
torch is written only in requirements.txt."""

from pathlib import Path

from mkdocs.exceptions import PluginError
from sitebuild.facts import FactError, facts, fill_in


def on_page_markdown(markdown, page, config, files):
    try:
        return fill_in(markdown, facts(Path(config.config_file_path).parent), page.file.src_uri)
    except FactError as error:
        raise PluginError(str(error)) from error

"""Each `<!--output-->` after a code block becomes the block's stored output, titled in the
page's language (sitebuild.outputs). A missing output file is a warning, so the strict build
fails, naming the command that writes it; `make serve` shows the command in its place."""

import logging
from pathlib import Path

from mkdocs.exceptions import PluginError
from sitebuild.layout import outputs_command
from sitebuild.outputs import OutputMarkError, insert_outputs, read_from

log = logging.getLogger("mkdocs.hooks.outputs")


def on_page_markdown(markdown, page, config, files):
    if not page.file.src_uri.endswith(".md"):
        return markdown
    try:
        text, missing = insert_outputs(markdown, page.file.src_uri,
                                       read_from(Path(config.config_file_path).parent))
    except OutputMarkError as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
    for path in missing:
        log.warning(f"{page.file.src_uri}: the output {path} is missing: run "
                    f"`{outputs_command(page.file.src_uri)}`")
    return text

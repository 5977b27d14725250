"""Serves every snippet file at downloads/<section>/<file>.py, byte for byte the file the tests
run, and puts a box near the top of each page that links the files it embeds
(sitebuild.downloads)."""

from pathlib import Path

from mkdocs.structure.files import File
from sitebuild.downloads import download_box, snippet_downloads


def on_files(files, config):
    snippets = Path(config.config_file_path).parent / "snippets"
    for uri, path in snippet_downloads(snippets).items():
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    return download_box(markdown, page.file.src_uri)

"""Ends each page with what its code was last verified with (sitebuild.verified)."""

from pathlib import Path

import markdown
from sitebuild.layout import includes, lang_of, page_key
from sitebuild.verified import load_records, stamp

_records = {}


def on_config(config):
    _records.clear()
    _records.update(load_records(Path(config.config_file_path).parent / "outputs" / "verified"))


def _stamp(page, has_code):
    uri = page.file.src_uri
    return stamp(page_key(uri), _records, lang_of(uri), has_code)


def on_page_markdown(text, page, config, files):  # a page's code is all snippet includes
    return text + _stamp(page, any(i.split(":")[0].endswith(".py") for i in includes(text)))


def on_page_content(html, page, config, files):
    """Notebooks are converted to HTML without a Markdown stage."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    return html + markdown.markdown(_stamp(page, True), extensions=["admonition"])

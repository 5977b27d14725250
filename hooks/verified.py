"""Ends each page with what its code was last verified with (sitebuild.verified)."""

import re

import markdown
from pathlib import Path

from sitebuild.verified import load_records, stamp

_records = {}
CODE = re.compile(r'--8<-- "[^"]+\.py')  # a page's code is all snippet includes


def on_config(config):
    _records.clear()
    _records.update(load_records(Path(config.config_file_path).parent / "outputs" / "verified"))


def _stamp(page, has_code):
    uri = page.file.src_uri
    return stamp(uri.replace(".ja.", "."), _records, "ja" if ".ja." in uri else "en", has_code)


def on_page_markdown(text, page, config, files):
    return text + _stamp(page, CODE.search(text) is not None)


def on_page_content(html, page, config, files):
    """Notebooks are converted to HTML without a Markdown stage."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    return html + markdown.markdown(_stamp(page, True), extensions=["admonition"])

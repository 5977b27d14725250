"""Notebook pages get a description and real image alt text from their metadata
(sitebuild.notebooks)."""

from sitebuild.notebooks import notebook_metadata, with_alt_text


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    meta = notebook_metadata(page.file.abs_src_path)
    if meta.get("description"):
        page.meta["description"] = meta["description"]
    return with_alt_text(html, meta.get("image_alt", []))

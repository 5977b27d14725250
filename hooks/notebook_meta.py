"""Notebook pages get a description, real image alt text and a table of contents
(sitebuild.notebooks)."""

from mkdocs.structure.toc import AnchorLink, TableOfContents
from sitebuild.notebooks import focusable_scroll_regions, notebook_metadata, toc_entries, with_alt_text


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    meta = notebook_metadata(page.file.abs_src_path)
    if meta.get("description"):
        page.meta["description"] = meta["description"]
    page.toc = _toc(toc_entries(html))
    return focusable_scroll_regions(with_alt_text(html, meta.get("image_alt", [])))


def _toc(entries):
    items = []
    for level, hid, title in entries:
        link = AnchorLink(title, hid, level)
        if level == 3 and items:
            items[-1].children.append(link)
        else:
            items.append(link)
    return TableOfContents(items)

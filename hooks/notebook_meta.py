"""Notebook pages get a description, real image alt text, a table of contents, links to
download the notebook or open it in Colab, output images as files loaded when scrolled to,
and only the Jupyter styles they use (sitebuild.notebooks, sitebuild.repository)."""

from pathlib import Path

from mkdocs.structure.toc import AnchorLink, TableOfContents
from sitebuild.notebooks import (focusable_scroll_regions, images_as_files, notebook_metadata,
                                 prune_notebook_css, toc_entries, with_alt_text, with_run_links)
from sitebuild.repository import colab_url


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    meta = notebook_metadata(page.file.abs_src_path)
    if meta.get("description"):
        page.meta["description"] = meta["description"]
    page.toc = _toc(toc_entries(html))
    docs_path = Path(page.file.abs_src_path).relative_to(config.docs_dir).as_posix()
    html = with_run_links(html, docs_path, colab_url(config.repo_url, docs_path))
    html = images_as_files(html, Path(config.site_dir) / Path(page.file.dest_uri).parent)
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


def on_post_page(output, page, config):
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    sheets = [p for d in config.theme.dirs for p in Path(d).glob("assets/stylesheets/*.css")]
    sheets += [Path(config.docs_dir) / css for css in config.extra_css]
    return prune_notebook_css(output, "".join(p.read_text(encoding="utf-8") for p in sheets))

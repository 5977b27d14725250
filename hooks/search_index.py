"""The site's search, build side (sitebuild.search): code and math out of the index, one
index per language, search.js as every page's search worker."""

from mkdocs.plugins import event_priority
from sitebuild.search import exclude_code, point_worker, split_by_language


def on_page_content(content, page, config, files):
    return exclude_code(content)


def on_post_page(output, page, config):
    return point_worker(output, page.file.src_uri)


def on_post_template(output_content, template_name, config):
    return point_worker(output_content, template_name) if template_name == "404.html" else output_content


@event_priority(-200)  # after the search plugin and the i18n plugin have written it
def on_post_build(config):
    split_by_language(config.site_dir)

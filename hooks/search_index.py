"""A smaller search index per language: code and math out of it, UTF-8 (sitebuild.search)."""

from mkdocs.plugins import event_priority
from sitebuild.search import compact_index, exclude_code, split_by_language


def on_page_content(content, page, config, files):
    return exclude_code(content)


@event_priority(-200)  # after the search plugin and the i18n plugin have written it
def on_post_build(config):
    compact_index(config.site_dir)
    split_by_language(config.site_dir)

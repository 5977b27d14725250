"""A smaller search index (every page downloads it on first load).

- Python code, notebook code cells and typeset math stay out of it (`data-search-exclude`):
  readers search prose, headings and quoted error messages (```text blocks stay indexed).
- The index is written as UTF-8 instead of `\\uXXXX` escapes, which tripled Japanese text.
"""

import json
import os
import re

from mkdocs.plugins import event_priority

CODE = re.compile(r'<div class="(?:language-(?:python|py|pycon) highlight|jp-Cell jp-CodeCell[^"]*)"')


def on_page_content(content, page, config, files):
    return CODE.sub(lambda m: m[0] + " data-search-exclude", content)


@event_priority(-200)  # after the search plugin and the i18n plugin have written it
def on_post_build(config):
    path = os.path.join(config.site_dir, "search", "search_index.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(index, f, ensure_ascii=False, separators=(",", ":"))

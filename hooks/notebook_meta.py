"""Notebook pages get what Markdown pages have from their front matter.

- `<meta name="description">` from the notebook's metadata["description"];
- real alt text for output images, from metadata["image_alt"] (one per image, in order),
  in place of nbconvert's "No description has been provided for this image".
"""

import html as html_lib
import json
import re

PLACEHOLDER = re.compile(r'alt="No description has been provided for this image"')


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    with open(page.file.abs_src_path, encoding="utf-8") as f:
        meta = json.load(f).get("metadata", {})
    if meta.get("description"):
        page.meta["description"] = meta["description"]
    alts = iter(meta.get("image_alt", []))
    return PLACEHOLDER.sub(lambda m: f'alt="{html_lib.escape(next(alts, ""), quote=True)}"', html)

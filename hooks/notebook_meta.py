"""Give notebook pages a description: notebooks have no front matter, so the page's
`<meta name="description">` comes from the notebook's own metadata["description"]."""

import json


def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        with open(page.file.abs_src_path, encoding="utf-8") as f:
            description = json.load(f).get("metadata", {}).get("description")
        if description:
            page.meta["description"] = description
    return html

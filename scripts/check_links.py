"""Check the external links of the built site (weekly job; needs network).

    python scripts/check_links.py [SITE_DIR]     # default: site/
"""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HREF = re.compile(r'href="(https?://[^"#]+)')


def status(url: str) -> str | None:
    request = urllib.request.Request(url, headers={"User-Agent": "cookbook-linkcheck"})
    try:
        with urllib.request.urlopen(request, timeout=20):
            return None
    except urllib.error.HTTPError as e:
        return None if e.code in (403, 429) else f"HTTP {e.code}"  # rate limits are not dead links
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


def main() -> int:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    urls: dict[str, set[str]] = {}
    for page in site.rglob("*.html"):
        for url in HREF.findall(page.read_text(encoding="utf-8", errors="replace")):
            if not url.startswith(("http://127.0.0.1", "http://localhost")):
                urls.setdefault(url, set()).add(page.relative_to(site).as_posix())
    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(urls, pool.map(status, urls)))
    bad = {u: r for u, r in results.items() if r}
    for url, reason in sorted(bad.items()):
        print(f"{reason:12} {url}  (on {', '.join(sorted(urls[url]))})")
    print(f"{len(urls)} external links, {len(bad)} broken")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

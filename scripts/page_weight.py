"""Page weight of the built site, as a reader's browser loads it on a first visit.

Opens every page of a built site in headless chromium, served on 127.0.0.1, and reports the
requests and the bytes transferred per page, gzip-compressed as a static host serves them.
A response the browser takes from its own cache (the search script, requested again as the
search worker) transfers nothing and counts nothing. Fails when a page is over its budget or
makes a request that leaves 127.0.0.1.

    python scripts/page_weight.py [SITE_DIR]      # default: build into build/weight/
"""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BASE = "/cookbook/"
# Budgets in KB (gzip, first load). Every page pays ~66 KB for what every page loads
# (Material's CSS 24 and JS 34, the search script 4, the site's CSS, the favicon); the rest
# is the page itself, mostly its highlighted code. Math adds KaTeX's CSS (4 KB) and the
# glyphs its formulas use (fonts cut to the site's math by hooks/katex.py, ~15 KB); notebooks
# their pruned Jupyter CSS (3 KB), their plots load when scrolled to (loading="lazy"). Search
# costs under 1 KB on first load (its configuration): the index of the page's language,
# Material's worker and the Japanese segmenter load when the reader first goes to the search
# box (docs/assets/javascripts/cookbook/search.js).
# A page's own highlighted code is what its reader came for: its weight (gzip, the page's
# <pre> blocks) is added to the page's budget, so that the budget holds everything else.
BUDGET_KB = {"page": 80, "math": 120, "notebook": 180}
PRE = re.compile(r"<pre\b.*?</pre>", re.S)


def code_kb(page_html: str) -> float:
    """The page's code blocks, gzip-compressed together, in KB."""
    return len(gzip.compress("".join(PRE.findall(page_html)).encode("utf-8"), compresslevel=6)) / 1024


def budget(row: dict) -> float:
    return BUDGET_KB[row["kind"]] + row.get("code_kb", 0)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def build(port: int) -> Path:
    out = ROOT / "build" / "weight" / BASE.strip("/")
    env = dict(os.environ, SITE_URL=f"http://127.0.0.1:{port}{BASE}", NO_MKDOCS_2_WARNING="1")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                   cwd=ROOT, env=env, check=True)
    return out


def pages(site: Path) -> list[str]:
    return sorted(p.parent.relative_to(site).as_posix() + "/"
                  for p in site.rglob("index.html") if "assets" not in p.parts)


def measure(site: Path, port: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    served: list[str] = []  # what the server sent (a response from the browser's cache is not)
    handler = functools.partial(_Served, served, directory=str(site.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which(os.environ.get("CHROMIUM", "chromium")), args=CHROMIUM_FLAGS)
            for path in pages(site):
                context = browser.new_context()  # empty cache: a first visit
                page = context.new_page()
                responses = []
                page.on("response", lambda r: responses.append(r))
                served.clear()
                page.goto(f"http://127.0.0.1:{port}{BASE}{path}".replace("/./", "/"))
                page.wait_for_load_state("networkidle")
                external = sum(urlparse(r.url).hostname != "127.0.0.1" for r in responses)
                by_type: dict[str, float] = {}
                page_html = ""
                for r in over_the_network(responses, served):
                    try:
                        body = r.body()
                    except Exception:  # noqa: BLE001 - e.g. a redirect has no body
                        body = b""
                    if r.request.resource_type == "document":
                        page_html = body.decode("utf-8", errors="replace")
                    kind = resource_type(r.request.resource_type, urlparse(r.url).path)
                    by_type[kind] = by_type.get(kind, 0) + len(gzip.compress(body, compresslevel=6)) / 1024
                html = page.content()
                rows.append({"page": path, "requests": len(served) + external, "external": external,
                             "kb": sum(by_type.values()), "by_type": by_type,
                             "code_kb": code_kb(page_html),
                             "kind": "notebook" if "jp-Notebook" in html
                             else "math" if 'class="katex"' in html else "page"})
                context.close()
            browser.close()
    finally:
        server.shutdown()
    return rows


def over_the_network(responses: list, served: list[str]) -> list:
    """The local responses the server sent, in order; a response to a path that the server sent
    fewer times than the browser received it came from the browser's cache."""
    left = list(served)
    out = []
    for r in responses:
        url = urlparse(r.url)
        if url.hostname == "127.0.0.1" and url.path in left:
            left.remove(url.path)
            out.append(r)
    return out


class _Served(http.server.SimpleHTTPRequestHandler):
    """Serves the site quietly and notes the path of every request it answers."""

    def __init__(self, served: list[str], *args, **kwargs):
        self.served = served
        super().__init__(*args, **kwargs)

    def log_request(self, code="-", size="-"):
        self.served.append(urlparse(self.path).path)

    def log_message(self, *args):
        pass


TYPES = ("html", "css", "js", "font", "image", "data")


def resource_type(browser_type: str, path: str) -> str:
    """The kind of bytes a response holds, for the report: the page's HTML, CSS, JavaScript
    (scripts and workers), fonts, images (the favicon too), data (search configuration, the
    sitemap)."""
    if browser_type == "document":
        return "html"
    if browser_type == "stylesheet":
        return "css"
    if browser_type == "script" or path.endswith(".js"):
        return "js"
    if browser_type == "font":
        return "font"
    if browser_type == "image" or path.endswith((".png", ".svg", ".ico", ".jpg", ".webp")):
        return "image"
    return "data"


def main() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else build(port)
    rows = measure(site, port)
    failed = False
    print(f"{'page':42} {'kind':8} {'requests':>8} {'KB gzip':>8} {'budget':>13}  "
          + " ".join(f"{t:>5}" for t in TYPES))
    for r in rows:
        over = r["kb"] > budget(r)
        failed |= bool(over or r["external"])
        allowed = f"{BUDGET_KB[r['kind']]}+{r.get('code_kb', 0):.1f} code"
        print(f"{r['page']:42} {r['kind']:8} {r['requests']:8d} {r['kb']:8.1f} {allowed:>13}  "
              + " ".join(f"{r['by_type'].get(t, 0):5.1f}" for t in TYPES)
              + ("  OVER" if over else "")
              + (f"  {r['external']} external" if r["external"] else ""))
    report = write_report(rows)
    print(f"report: {report}")
    return 1 if failed else 0


REPORT = Path(__file__).resolve().parent.parent / "build" / "reports" / "page-weight.md"


def write_report(rows: list[dict], path: Path = REPORT) -> Path:
    """The measurement as a dated table by kind of page (build/reports/, not committed: the
    README explains the budgets; the numbers belong to the run that measured them)."""
    import datetime
    import platform

    lines = [f"# Page weight, measured {datetime.date.today().isoformat()} "
             f"({platform.machine()}, `make weight`)", "",
             "| kind | pages | requests | KB gzip | budget |", "| --- | --- | --- | --- | --- |"]
    for kind in BUDGET_KB:
        own = [r for r in rows if r["kind"] == kind]
        if own:
            req = sorted(r["requests"] for r in own)
            kb = sorted(r["kb"] for r in own)
            lines.append(f"| {kind} | {len(own)} | {req[0]}–{req[-1]} | {kb[0]:.0f}–{kb[-1]:.0f} | "
                         f"{BUDGET_KB[kind]} + its code |")
    above = [r["page"] for r in rows if r["kb"] > BUDGET_KB[r["kind"]]]
    lines += ["", f"External requests: {sum(r['external'] for r in rows)}.",
              f"Above the budget of their kind before their code is added: {len(above)} of "
              f"{len(rows)}" + (f" ({', '.join(above)})." if above else "."), "",
              "The heaviest page of each kind, KB gzip by type of resource (code: the part of the "
              "HTML that is the page's code blocks):", "",
              "| page | kind | " + " | ".join(TYPES) + " | total | code |",
              "| --- | --- | " + "--- | " * len(TYPES) + "--- | --- |"]
    for kind in BUDGET_KB:
        own = [r for r in rows if r["kind"] == kind]
        if own:
            r = max(own, key=lambda r: r["kb"])
            lines.append(f"| {r['page']} | {kind} | "
                         + " | ".join(f"{r.get('by_type', {}).get(t, 0):.1f}" for t in TYPES)
                         + f" | {r['kb']:.1f} | {r.get('code_kb', 0):.1f} |")
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())

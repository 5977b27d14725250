"""What a Zensical build of this site loses against the MkDocs build, page by page.

Material for MkDocs ends on 2027-05-05 and names Zensical its successor. This stages a copy
of mkdocs.yml that Zensical can read (it knows neither `!relative` nor `!ENV` nor Python
tags), builds the site with the installed `zensical`, builds it with MkDocs, and reports for
every page: built or missing, language, notebook rendered, math typeset, download box, and
internal links that lead nowhere; then the search index. A report, not a gate: it exits 0
unless a build fails to run (`make zensical-parity`; non-blocking in CI).

    python scripts/zensical_parity.py [--zensical PATH] [--out build/zensical]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hooks"))
from sitebuild.layout import DOCS, ROOT, site_path  # noqa: E402


def staged_config(text: str) -> str:
    """mkdocs.yml with what Zensical cannot parse replaced by plain values."""
    text = text.replace("!relative $config_dir/snippets", "snippets").replace("!relative $config_dir", ".")
    text = re.sub(r'!ENV \[\w+, "([^"]*)"\]', r'"\1"', text)
    text = re.sub(r"!ENV \[\w+, null\]", "null", text)
    text = re.sub(r"\n\s+slugify: !!python/object/apply:[^\n]*\n\s+kwds:\n\s+case: lower", "", text)
    return text


def pages() -> list[Path]:
    return sorted([*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")])


def mkdocs_path(page: Path) -> str:
    return site_path(page) + "index.html"


def zensical_path(page: Path) -> str:
    rel = re.sub(r"\.(md|ipynb)$", "", page.relative_to(DOCS).as_posix())  # keeps ".ja"
    return ("" if rel == "index" else rel + "/") + "index.html"


def features(html: str) -> dict:
    return {
        "lang": (re.search(r'<html[^>]*lang="([^"]+)"', html) or [None, "?"])[1],
        "notebook": "jp-Cell" in html,
        "math": html.count('class="katex"'),
        "download": "whole recipe as one script" in html or "レシピ全体を 1 つのスクリプトで" in html,
    }


def broken_links(site: Path, path: str, html: str) -> int:
    broken = 0
    for href in re.findall(r'href="([^"#]+)(?:#[^"]*)?"', html):
        if urlparse(href).scheme or href.startswith("mailto:"):
            continue
        target = urlparse(urljoin("/" + path, href)).path.lstrip("/")
        if target.endswith("/") or not target:
            target += "index.html"
        broken += not (site / target).exists()
    return broken


def build(command: list[str], cwd: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zensical", default=shutil.which("zensical") or "zensical")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "zensical")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # Zensical resolves paths from the config's folder: stage the config in the repository.
    staged = ROOT / ".zensical.yml"
    staged.write_text(f"site_dir: {os.path.relpath(out / 'zensical', ROOT)}\n"
                      + staged_config((ROOT / "mkdocs.yml").read_text(encoding="utf-8")), encoding="utf-8")
    try:
        build([args.zensical, "build", "-f", staged.name], ROOT)
    finally:
        staged.unlink()
    build([sys.executable, "-m", "mkdocs", "build", "-q", "--site-dir", str(out / "mkdocs")], ROOT)
    version = subprocess.run([args.zensical, "--version"], capture_output=True, text=True).stdout.strip()

    rows, lost = [], {"missing": 0, "language": 0, "notebook": 0, "math": 0, "download": 0, "links": 0}
    for page in pages():
        m_html = (out / "mkdocs" / mkdocs_path(page)).read_text(encoding="utf-8")
        z_file = out / "zensical" / zensical_path(page)
        m = features(m_html)
        if not z_file.exists():
            rows.append((page, "missing", "", "", "", "", ""))
            lost["missing"] += 1
            continue
        z_html = z_file.read_text(encoding="utf-8")
        z = features(z_html)
        cells = {
            "language": "ok" if z["lang"] == m["lang"] else f"{z['lang']} (MkDocs: {m['lang']})",
            "notebook": "" if not m["notebook"] else ("ok" if z["notebook"] else "not rendered"),
            "math": "" if not m["math"] else ("ok" if z["math"] else f"not typeset (MkDocs: {m['math']})"),
            "download": "" if not m["download"] else ("ok" if z["download"] else "no box"),
            "links": str(broken_links(out / "zensical", zensical_path(page), z_html) or "ok"),
        }
        for key, value in cells.items():
            lost[key] += value not in ("", "ok")
        rows.append((page, zensical_path(page), *cells.values()))

    lines = [f"# Zensical parity: {version or 'zensical'} against MkDocs", "",
             "| page | Zensical path | language | notebook | math | download box | broken links |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {p.relative_to(DOCS).as_posix()} | " + " | ".join(str(c) for c in cells) + " |"
              for p, *cells in rows]
    z_search = sorted(p.relative_to(out / "zensical").as_posix() for p in (out / "zensical").rglob("search*"))
    m_search = sorted(p.relative_to(out / "mkdocs").as_posix() for p in (out / "mkdocs").glob("search/*.json"))
    lines += ["", f"Search: MkDocs writes {m_search}, Zensical {z_search}.",
              f"Pages: {len(rows)}; " + ", ".join(f"{k}: {v}" for k, v in lost.items()) + "."]
    report = "\n".join(lines) + "\n"
    (out / "report.md").write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

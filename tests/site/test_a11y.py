"""Pages everyone can read: axe-core (tests/site/axe, npm `axe-core` 4.14.1, MPL-2.0) finds no
WCAG 2 A or AA violation, in both languages and both colour schemes.

Every page in both schemes takes about 90 s on a 2-core machine: `make test-a11y` (and CI)
runs them all; `make test` runs two pages that between them hold every kind of content, in both
languages and schemes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cookbook_testing.pages import markdown_pages, notebooks, site_path

pytestmark = [pytest.mark.xdist_group("site"), pytest.mark.slow]

AXE = (Path(__file__).parent / "axe" / "axe.min.js").read_text(encoding="utf-8")
ALL = [(site_path(p), scheme) for p in markdown_pages() + notebooks()
       for scheme in ("light", "dark")] + [("404.html", "light"), ("404.html", "dark")]
SAMPLE = [("ja/notebooks/forgotten-optimizer-state/", "light"),  # notebook, Japanese, math
          ("recipes/save-and-resume/", "dark")]
CASES = ALL if os.environ.get("A11Y") == "all" else SAMPLE


@pytest.fixture(scope="module")
def schemes(browser):
    contexts = {s: browser.new_context(color_scheme=s) for s in ("light", "dark")}
    yield {s: c.new_page() for s, c in contexts.items()}
    for c in contexts.values():
        c.close()


def test_the_sample_covers_each_kind_of_page():
    assert {p for p, _ in SAMPLE} <= {p for p, _ in ALL}
    assert {s for _, s in SAMPLE} == {"light", "dark"}


@pytest.mark.parametrize("path, scheme", CASES, ids=[f"{p or 'index'}:{s}" for p, s in CASES])
def test_no_wcag_violation(schemes, site_url, path, scheme):
    page = schemes[scheme]
    page.goto(site_url + path)
    page.add_script_tag(content=AXE)
    violations = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: ["wcag2a", "wcag2aa"]});
        return r.violations.map(v => `${v.id}: ${v.nodes.length}x, e.g. ${v.nodes[0].target} `
                                     + `(${(v.nodes[0].any[0] || {message: ""}).message})`);
    }""")
    assert violations == []

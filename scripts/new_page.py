"""A new page pair with everything it needs, passing the tests as it is:

    make new-page PAGE=recipes/my-topic TITLE="My topic" TITLE_JA="私のトピック"
    python scripts/new_page.py recipes/my-topic "My topic" "私のトピック"

creates
    docs/<section>/<topic>.md, <topic>.ja.md     the pair (the Japanese with translated_from)
    snippets/<section>/<topic>.py                its code, one named section (`example`)
    outputs/<section>/<topic>/example.txt        that section's output (scripts/outputs.py)
    tests/<section>/test_<topic>.py              a claim of the page that its blocks do not show
and adds the page to the nav of mkdocs.yml (under the group of its section) and to the home
page's list of its section in both languages, then records the page as verified
(outputs/verified/cpu.json) by running its blocks. Replace the example with the page's own
code and prose; `make outputs` rewrites the outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "hooks"), str(ROOT / "scripts")]

from sitebuild.layout import DOCS, SNIPPETS, both_languages, include_line, OUTPUT_MARK  # noqa: E402

PAGE = {
    "en": """---
description: >-
  {title}: an example to replace with the page's own recipe.
---

# {title} {{#{topic}}}

Run the blocks in order in one Python session; each block below ran, as shown, in this
site's tests.

## The optimizer's state dict {{#example}}

`optimizer.state_dict()` has two keys: the hyperparameters of each parameter group, and the
state of each parameter.

```python
{include}
```

{output}
""",
    "ja": """---
description: >-
  {title}：このページのレシピに置き換える例です。
---

# {title} {{#{topic}}}

ブロックは 1 つの Python セッションで上から順に実行してください。どのブロックも、このサイトのテストで表示どおりに実行されています。

## オプティマイザの `state_dict` {{#example}}

`optimizer.state_dict()` のキーは 2 つです。パラメータグループごとのハイパーパラメータと、パラメータごとの状態です。

```python
{include}
```

{output}
""",
}

SNIPPET = """# {title}
# Page: docs/{page}.md (and .ja.md). Sections are embedded in page order.

# --8<-- [start:example]
import torch

model = torch.nn.Linear(4, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
print(sorted(optimizer.state_dict()))
# --8<-- [end:example]
"""

TEST = '''"""Claims of docs/{page}.md that its blocks do not show."""

from __future__ import annotations

import torch

from cookbook_testing.snippets import sections_namespace


def test_a_new_optimizer_has_no_state_until_its_first_step():
    ns = sections_namespace("{snippet}", "example")
    assert ns["optimizer"].state_dict()["state"] == {{}}
    ns["model"](torch.ones(1, 4)).sum().backward()
    ns["optimizer"].step()
    assert set(ns["optimizer"].state_dict()["state"]) == {{0, 1}}
'''


class ScaffoldError(SystemExit):
    pass


def add_to_nav(text: str, page: str) -> str:
    """mkdocs.yml with `- <page>` after the last nav entry of its section."""
    section = page.split("/")[0] + "/"
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if re.match(rf"\s+- {re.escape(section)}[\w-]+\.md\s*$", line)),
               default=None)
    if last is None:
        raise ScaffoldError(f"mkdocs.yml: no nav group holds a page of {section}; add the group "
                            f"(and its Japanese name under nav_translations) first")
    indent = re.match(r"\s*", lines[last])[0]
    return "\n".join(lines[:last + 1] + [f"{indent}- {page}"] + lines[last + 1:])


def add_to_home(text: str, page: str, title: str) -> str:
    """The home page with a link to the page after the last item that links a page of its
    section; unchanged if its section has no list there."""
    section = page.split("/")[0] + "/"
    lines = text.split("\n")
    items = [i for i, line in enumerate(lines) if line.startswith("- [") and f"]({section}" in line]
    if not items:
        return text
    end = items[-1] + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return "\n".join(lines[:end] + [f"- [{title}]({page})"] + lines[end:])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("page", help="<section>/<topic>, e.g. recipes/my-topic")
    parser.add_argument("title")
    parser.add_argument("title_ja")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs the blocks")
    args = parser.parse_args(argv)
    page = args.page.removeprefix("docs/").removesuffix(".md")
    if not re.fullmatch(r"[a-z]+/[a-z0-9]+(?:-[a-z0-9]+)*", page):
        raise ScaffoldError(f"PAGE={args.page!r}: give <section>/<topic> in lower case with "
                            f"hyphens, e.g. recipes/my-topic")
    if not args.title.strip() or not args.title_ja.strip():
        raise ScaffoldError("TITLE and TITLE_JA are both needed (the page's title in each language)")
    section, topic = page.split("/")
    snippet = f"{section}/{topic.replace('-', '_')}.py"
    test = ROOT / "tests" / section / f"test_{topic.replace('-', '_')}.py"
    en, ja = both_languages(page + ".md")
    clash = [p for p in (en, ja, SNIPPETS / snippet, test) if p.exists()]
    clash += [p for p in (ROOT / "tests").rglob(test.name) if p != test]  # module names are global
    if clash:
        raise ScaffoldError(f"{page}: already there: {', '.join(str(p.relative_to(ROOT)) for p in clash)}")

    import translations  # scripts/translations.py: the review record of the Japanese pages

    for lang, path, title in (("en", en, args.title), ("ja", ja, args.title_ja)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGE[lang].format(title=title.strip(), topic=topic, output=OUTPUT_MARK,
                                          include=include_line(snippet, "example")), encoding="utf-8")
    translations.mark_reviewed(en)
    (SNIPPETS / snippet).parent.mkdir(parents=True, exist_ok=True)
    (SNIPPETS / snippet).write_text(SNIPPET.format(title=args.title.strip(), page=page), encoding="utf-8")
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(TEST.format(page=page, snippet=snippet), encoding="utf-8")

    mkdocs = ROOT / "mkdocs.yml"
    mkdocs.write_text(add_to_nav(mkdocs.read_text(encoding="utf-8"), page + ".md"), encoding="utf-8")
    home_en, home_ja = both_languages("index.md")
    reviewed = translations.recorded(home_ja) == translations.english_hash(home_en.read_text(encoding="utf-8"))
    for home, title in ((home_en, args.title), (home_ja, args.title_ja)):
        home.write_text(add_to_home(home.read_text(encoding="utf-8"), page + ".md", title.strip()),
                        encoding="utf-8")
    if reviewed:  # the same link added to both: the Japanese home page stays reviewed
        translations.mark_reviewed(home_en)

    queries = ROOT / "tests" / "site" / "search_queries.yml"  # the titles, until the author adds more
    with queries.open("a", encoding="utf-8") as f:
        f.write(f"{page}: {{en: [{json.dumps(args.title.strip())}], "
                f"ja: [{json.dumps(args.title_ja.strip(), ensure_ascii=False)}]}}\n")

    run = lambda *cmd: subprocess.run([args.python, *cmd], cwd=ROOT, check=True)  # noqa: E731
    run("scripts/outputs.py", "--record-verified", page + ".md")
    for path in (en, ja, SNIPPETS / snippet, test):
        print(f"written: {path.relative_to(ROOT)}")
    print(f"added: {page}.md to the nav (mkdocs.yml) and to the home page\n"
          f"Next: write the page's code in {snippet}, its prose in both languages, "
          f"then `{include_line(snippet, '<section>')}` fences, `make outputs`, `make test`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Material's stylesheet cut to the rules that can match something on this site.

Every page loads Material's main stylesheet (137 KB, 22 KB gzip), which styles every feature
the theme has: blog, tags, cards, right-to-left text, versions, consent and more. A rule stays
when each class its selector needs outside `:is()`, `:where()`, `:not()` and `:has()` occurs
somewhere: on a built page, in a class the site's scripts write (Material's bundle builds its
search results, tooltips and code buttons from strings), or after a prefix that a script
completes at run time (`md-source__fact--${...}`). Rules for `[dir=rtl]` go: no page is
right-to-left. What a rule needs that no page and no script can produce never matches, so
each page renders as with the whole stylesheet; the cut is cached by its input.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sitebuild.layout import CACHE, write_cached
from sitebuild.notebooks import _selectors

CACHE_DIR = CACHE / "theme-css"
CLASS_ATTR = re.compile(r'class="([^"]*)"')
CLASS = re.compile(r"\.(-?[_a-zA-Z][-\w]*)")
FUNCTIONAL = re.compile(r":(?:is|where|not|has|matches|-webkit-any|-moz-any)\([^()]*\)")
TOKEN = re.compile(r"-?[_a-zA-Z][-\w]*")
PREFIX = re.compile(r"(-?[_a-zA-Z][-\w]*-)\$\{")  # `md-source__fact--${name}`
RTL = re.compile(r"\[dir=[\"']?rtl")


# What one file's text gives, by the hash of the text: a `make serve` rebuild writes every
# page again, and reads again only those whose text changed.
_FOUND: dict[bytes, tuple[frozenset[str], frozenset[str]]] = {}


def _found(data: bytes, script: bool) -> tuple[frozenset[str], frozenset[str]]:
    key = hashlib.sha1(data).digest() + (b"js" if script else b"html")
    if key not in _FOUND:
        if script:
            text = data.decode("utf-8", errors="replace")
            _FOUND[key] = frozenset(TOKEN.findall(text)), frozenset(PREFIX.findall(text))
        else:
            names = (name for attr in CLASS_ATTR.findall(data.decode("utf-8")) for name in attr.split())
            _FOUND[key] = frozenset(names), frozenset()
    return _FOUND[key]


def site_classes(site_dir: Path) -> tuple[set[str], tuple[str, ...]]:
    """Every class a built page has or a script of the site can write; and the prefixes of
    classes that a script completes at run time."""
    used: set[str] = set()
    prefixes: set[str] = set()
    for pattern, script in (("*.html", False), ("*.js", True)):
        for path in site_dir.rglob(pattern):
            classes, completed = _found(path.read_bytes(), script)
            used |= classes
            prefixes |= completed
    return used, tuple(sorted(prefixes))


def needed(selector: str) -> set[str]:
    """The classes an element must have for the selector to match (inside a functional
    pseudo-class, alternatives and negations need none)."""
    selector = re.sub(r"\[[^\]]*\]", "", selector)  # an attribute's value is no class
    while True:
        shorter = FUNCTIONAL.sub("", selector)
        if shorter == selector:
            return set(CLASS.findall(selector))
        selector = shorter


def cut(css: str, used: set[str], prefixes: tuple[str, ...] = (), cache: Path | None = CACHE_DIR) -> str:
    """The stylesheet without the rules no page can match (cached by its input)."""
    key = hashlib.sha256("\0".join([css, " ".join(sorted(used)), " ".join(prefixes)])
                         .encode("utf-8")).hexdigest()[:32]
    if cache is not None and (cache / key).is_file():
        return (cache / key).read_text(encoding="utf-8")
    import tinycss2

    def can_match(selector: str) -> bool:
        return not RTL.search(selector) and all(
            c in used or c.startswith(prefixes) for c in needed(selector))

    def rules(parsed) -> list[str]:
        out = []
        for rule in parsed:
            if rule.type == "qualified-rule":
                keep = [s for s in _selectors(tinycss2.serialize(rule.prelude)) if can_match(s)]
                if keep:
                    out.append(",".join(keep) + "{" + tinycss2.serialize(rule.content) + "}")
            elif rule.type == "at-rule" and rule.lower_at_keyword in ("media", "supports") and rule.content:
                inner = rules(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                                       skip_whitespace=True))
                if inner:
                    out.append(f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}{{{''.join(inner)}}}")
            elif rule.type == "at-rule":
                out.append(tinycss2.serialize([rule]))
        return out

    result = "".join(rules(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)))
    if cache is not None:
        write_cached(cache / key, result)
    return result


def cut_theme_css(site_dir: Path, theme_dirs: list[str]) -> list[str]:
    """Replace Material's main stylesheet in the built site by its cut, read from the theme
    (not from the site, which may hold the cut of an earlier pass); returns what it wrote."""
    used, prefixes = site_classes(site_dir)
    done = []
    for theme in theme_dirs:
        for source in sorted(Path(theme).glob("assets/stylesheets/main.*.min.css")):
            target = site_dir / source.relative_to(theme)
            if target.is_file() and target.as_posix() not in done:
                target.write_text(cut(source.read_text(encoding="utf-8"), used, prefixes),
                                  encoding="utf-8")
                done.append(target.as_posix())
    return done

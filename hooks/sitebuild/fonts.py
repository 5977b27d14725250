"""KaTeX's fonts cut to the characters the site's formulas draw.

A page downloads a KaTeX font when one of its formulas uses it, and the whole file: 26 KB for
KaTeX_Main-Regular, 16 KB for KaTeX_Math-Italic, of which a formula draws a few dozen glyphs.
The build collects the characters of every formula it typesets (`drawn`: the part KaTeX draws,
not the MathML that screen readers read), and writes into the built site each font of the
families those formulas use with only those characters (about 6 KB each). Every font keeps
every character any formula on the site draws, so no formula loses a glyph; a family no
formula uses is copied whole (no page downloads it). Subset fonts are cached by their input.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from pathlib import Path

from sitebuild.layout import CACHE, ROOT

KATEX_DIR = ROOT / "docs" / "assets" / "katex"
CACHE_DIR = CACHE / "katex-fonts"
MATHML = re.compile(r'<span class="katex-mathml">.*?</math></span>', re.S)
TAG = re.compile(r"<[^>]+>")
CLASSES = re.compile(r'class="([^"]*)"')
# KaTeX's stylesheet draws equation numbers itself ("(" counter ")"), in KaTeX_Main.
ALWAYS = set("()0123456789 \u00a0")
FONT_FACE = re.compile(r"@font-face\{([^}]*)\}")
RULE = re.compile(r"([^{}@]+)\{([^{}]*font-family:(KaTeX_\w+)[^{}]*)\}")


def drawn(formula_html: str) -> tuple[set[str], set[str]]:
    """The characters and the classes of KaTeX's HTML for one formula (its MathML aside)."""
    visible = MATHML.sub("", formula_html)
    classes = {c for attr in CLASSES.findall(visible) for c in attr.split()}
    return set(html.unescape(TAG.sub("", visible))), classes


def families_used(classes: set[str], css: str) -> set[str]:
    """The KaTeX font families a set of formula classes can select in KaTeX's stylesheet
    (KaTeX_Main, the default, always): a selector counts when all its classes are used."""
    used = {"KaTeX_Main"}
    for selectors, _, family in RULE.findall(css):
        for selector in selectors.split(","):
            own = set(re.findall(r"\.([-\w]+)", selector)) - {"katex"}
            if own and own <= classes:
                used.add(family)
    return used


def font_files(css: str) -> dict[str, list[str]]:
    """Family -> the woff2 files of its faces, from KaTeX's @font-face rules."""
    out: dict[str, list[str]] = {}
    for face in FONT_FACE.findall(css):
        family = re.search(r"font-family:(KaTeX_\w+)", face)
        woff2 = re.search(r"url\(fonts/([^)]+\.woff2)\)", face)
        if family and woff2:
            out.setdefault(family[1], []).append(woff2[1])
    return out


def subset(font: bytes, chars: set[str], cache: Path | None = CACHE_DIR) -> bytes:
    """A woff2 font with only the glyphs of `chars` (those it has), from the cache when the
    same font was cut to the same characters before."""
    key = hashlib.sha256(font + "".join(sorted(chars)).encode("utf-8")).hexdigest()[:32]
    if cache is not None and (cache / key).is_file():
        return (cache / key).read_bytes()
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    options = ft_subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    tt = TTFont(io.BytesIO(font))
    cutter = ft_subset.Subsetter(options)
    cutter.populate(unicodes=sorted(ord(c) for c in chars))
    cutter.subset(tt)
    out = io.BytesIO()
    tt.save(out)
    data = out.getvalue()
    if cache is not None:  # whole or not at all: builds and test workers share the cache
        import os
        import tempfile

        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, cache / key)
    return data


def write_subset_fonts(site_dir: Path, chars: set[str], classes: set[str]) -> list[str]:
    """Replace, in the built site, the fonts of the families the formulas use by their cut;
    returns the files replaced. Without formulas nothing changes."""
    if not chars:
        return []
    css = (KATEX_DIR / "katex.min.css").read_text(encoding="utf-8")
    files = font_files(css)
    done = []
    for family in sorted(families_used(classes, css)):
        for name in files.get(family, []):
            source = KATEX_DIR / "fonts" / name
            target = site_dir / "assets" / "katex" / "fonts" / name
            if source.is_file() and target.parent.is_dir():
                target.write_bytes(subset(source.read_bytes(), chars | ALWAYS))
                done.append(name)
    return done

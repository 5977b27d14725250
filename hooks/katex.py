"""Typeset math at build time with the self-hosted KaTeX (sitebuild.typeset); a TeX error
fails the build, naming the page. The built site's KaTeX fonts keep only the glyphs the
formulas draw (sitebuild.fonts)."""

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from sitebuild.fonts import drawn, write_subset_fonts
from sitebuild.typeset import TypesetError, typeset

FORMULAS: list[str] = []  # KaTeX's HTML of every formula of this build, all languages


def on_config(config):
    # Once per build (and per rebuild of `mkdocs serve`): the i18n plugin builds the other
    # language inside its on_post_build, which runs no on_config, so both languages collect.
    FORMULAS.clear()


def on_page_content(content, page, config, files):
    try:
        return typeset(content, page.file.src_uri, notebook=page.file.src_uri.endswith(".ipynb"),
                       formulas=FORMULAS)
    except TypesetError as error:
        raise PluginError(str(error)) from error


@event_priority(-200)  # after the i18n plugin's (-100), which builds the other language
def on_post_build(config):
    if getattr(config.plugins.get("i18n"), "building", False):
        return  # the other language's build, inside the i18n plugin's: once, when both are built
    chars, classes = set(), set()
    for formula in FORMULAS:
        c, k = drawn(formula)
        chars |= c
        classes |= k
    write_subset_fonts(Path(config.site_dir), chars, classes)

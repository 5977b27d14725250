"""Material's stylesheet cut to the rules that can match something on this site: 6 KB gzip
less on every page (sitebuild.theme_css)."""

from pathlib import Path

from mkdocs.plugins import event_priority
from sitebuild.theme_css import cut_theme_css


@event_priority(-200)  # after the i18n plugin's (-100), which builds the other language
def on_post_build(config):
    if getattr(config.plugins.get("i18n"), "building", False):
        return  # the other language's build, inside the i18n plugin's: once, when both are built
    cut_theme_css(Path(config.site_dir), config.theme.dirs)

"""A rebuild redoes only what changed: rendered pages, highlighted code, search entries and
compiled templates come from the cache when their input is unchanged (sitebuild.reuse), the
theme's files are listed once per process, and each language keeps its own cache of rendered
notebooks."""

from importlib.metadata import version
from pathlib import Path

import material.plugins.search.plugin as material_search
import pymdownx.highlight
from jinja2 import FileSystemBytecodeCache
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from sitebuild.reuse import (cached_highlight, cached_search_entries, remembered_render,
                             remembered_theme_files, template_cache)

HIGHLIGHT_VERSIONS = f"pygments {version('pygments')}, pymdown-extensions {version('pymdown-extensions')}"
SEARCH_VERSIONS = (f"mkdocs-material {version('mkdocs-material')}, "
                   f"jieba {material_search.jieba is not None}")


def _patch(owner, name, wrap, versions):
    """Replace owner.name with its cached form once (every `make serve` rebuild loads this
    hook again: the original is the one under the wrapper)."""
    current = getattr(owner, name, None)
    if current is None:
        raise PluginError(f"hooks/build_cache.py: {owner.__name__}.{name} is gone (a new "
                          f"version?): update hooks/sitebuild/reuse.py or remove the hook")
    setattr(owner, name, wrap(getattr(current, "__wrapped__", current), versions))


def on_config(config):
    current = Page.render
    Page.render = remembered_render(getattr(current, "__wrapped__", current))
    current = Files.add_files_from_theme
    Files.add_files_from_theme = remembered_theme_files(getattr(current, "__wrapped__", current))
    _patch(pymdownx.highlight.Highlight, "highlight", cached_highlight, HIGHLIGHT_VERSIONS)
    _patch(material_search.SearchIndex, "add_entry_from_context", cached_search_entries,
           SEARCH_VERSIONS)


def on_pre_build(config):
    """mkdocs-jupyter deletes, after each build, the cached notebooks that build did not use:
    with one build per language, each deleted the other's, so no notebook was ever reused.
    One cache folder per language (and per version of the converter) ends that."""
    jupyter = config.plugins.get("mkdocs-jupyter")
    if jupyter is None:
        return
    i18n = config.plugins.get("i18n")  # it sets the language of each build in on_config
    lang = getattr(i18n, "current_language", None) or "en"
    converter = f"mkdocs-jupyter-{version('mkdocs-jupyter')}-nbconvert-{version('nbconvert')}"
    jupyter.config["cache_dir"] = str(Path(config.config_file_path).parent / ".cache" /
                                      "mkdocs-jupyter" / converter / lang)


@event_priority(-200)  # after the plugins have added their extensions (i18n: loopcontrols)
def on_env(env, config, files):
    folder = template_cache(env)
    folder.mkdir(parents=True, exist_ok=True)
    env.bytecode_cache = FileSystemBytecodeCache(str(folder))
    return env

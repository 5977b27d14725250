"""mkdocs.yml read without MkDocs, and the snippet expansion the site build does."""

from __future__ import annotations

import functools

import markdown
import yaml
from sitebuild.layout import ROOT


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml without MkDocs: its custom tags become plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return value.replace("$config_dir", str(ROOT)) if suffix == "relative" else value
    if isinstance(node, yaml.SequenceNode):
        seq = loader.construct_sequence(node)
        return seq[-1] if suffix == "ENV" else seq  # !ENV [NAME, default] -> default
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", lambda l, s, n: _tag(l, s, n))
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda l, s, n: None)


@functools.cache
def mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)


@functools.cache
def snippets_config() -> dict:
    for ext in mkdocs_config()["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            return dict(ext["pymdownx.snippets"])
    raise AssertionError("pymdownx.snippets is not configured in mkdocs.yml")


def expand(text: str) -> str:
    """Expand --8<-- includes exactly as the site build does (same extension, same options)."""
    md = markdown.Markdown(extensions=["pymdownx.snippets"],
                           extension_configs={"pymdownx.snippets": snippets_config()})
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


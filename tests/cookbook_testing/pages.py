"""The names tests import, gathered from the modules that define them (import from those in
new code). Each module has one job:

    sitebuild.layout   where things are: language, twin, includes, output paths, site paths
    config             mkdocs.yml without MkDocs; snippet expansion as the build does it
    markdown           the pages: which there are, fences, headings, prose, as the reader sees them
    blocks             a page's executable blocks and their marks
    runner             running them in page order, one session per page
    snippets           snippet files, their sections, a namespace made from sections
    quotes             a message quoted verbatim on a page
    programs           the environment of a program a test starts

Only needs Markdown, pymdown-extensions, PyYAML and pytest-codeblocks, so that the page
blocks also run on a GPU machine that has its own torch and no MkDocs.
"""

from __future__ import annotations

from sitebuild.layout import (DOCS, INCLUDE, LANGS, OUTPUTS, ROOT, SECTION, SNIPPETS,  # noqa: F401
                              both_languages, includes, lang_of, output_path, outputs_command,
                              page_key, site_path, split_include, twin)

from cookbook_testing.blocks import (OUTPUT_MARK_HELP, Block, normalise_output, page_blocks,  # noqa: F401
                                     parse_mark)
from cookbook_testing.config import expand, mkdocs_config, snippets_config  # noqa: F401
from cookbook_testing.markdown import (PYTHON_SYNTAX, _code_expanded, expanded, fences,  # noqa: F401
                                       has_math, headings, is_python, markdown_pages, notebook_code,
                                       notebooks, pages_by_key, prose_lines, python_fence_count,
                                       raw_blocks)
from cookbook_testing.programs import program_env  # noqa: F401
from cookbook_testing.quotes import assert_quoted  # noqa: F401
from cookbook_testing.runner import PageRunner, PageSession, run_block  # noqa: F401
from cookbook_testing.snippets import (load_module, section_source, sections_namespace,  # noqa: F401
                                       snippet_files, snippet_sections)

base_key = page_key  # the former name

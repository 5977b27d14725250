"""The MkDocs hooks' own logic, tested without starting MkDocs."""

from __future__ import annotations

from cookbook_testing.pages import ROOT, SNIPPETS, load_module

downloads = load_module(ROOT / "hooks" / "downloads.py", "downloads_hook")


def test_every_snippet_file_is_served_for_download():
    served = downloads.snippet_downloads(SNIPPETS)
    assert served["downloads/recipes/checkpoint_files.py"] == SNIPPETS / "recipes" / "checkpoint_files.py"
    assert len(served) == len(list(SNIPPETS.rglob("*.py")))


def test_download_box_goes_after_the_first_paragraph_in_the_page_language():
    page = ('---\ndescription: x\n---\n\n# Title {#t}\n\nFirst paragraph,\ntwo lines.\n\n'
            '```python\n--8<-- "recipes/safe_checkpoints.py:a"\n```\n\n'
            '```python\n--8<-- "recipes/checkpoint_files.py:b"\n```\n')
    en = downloads.download_box(page, "recipes/safe-checkpoints.md")
    assert en.index("two lines.") < en.index("The whole recipe as one script") < en.index("```python")
    assert "[`safe_checkpoints.py`](../downloads/recipes/safe_checkpoints.py), " \
           "[`checkpoint_files.py`](../downloads/recipes/checkpoint_files.py)" in en
    assert "run `python safe_checkpoints.py`" in en
    ja = downloads.download_box(page, "recipes/safe-checkpoints.ja.md")
    assert "レシピ全体を 1 つのスクリプトで" in ja and "`python safe_checkpoints.py` で実行します" in ja
    assert downloads.download_box("# T\n\ntext\n", "index.md") == "# T\n\ntext\n"


def test_files_a_script_imports_are_offered_too():
    page = '# T\n\nx\n\n```python\n--8<-- "troubleshooting/errors/damaged_files.py:atomic_save"\n```\n'
    box = downloads.download_box(page, "troubleshooting/errors.md")
    assert "downloads/recipes/checkpoint_files.py" in box
    assert "downloads/troubleshooting/errors/running_example.py" in box


def test_edit_links_only_with_a_repository_address():
    repository = load_module(ROOT / "hooks" / "repository.py", "repository_hook")
    assert repository.edit_uri_for(None) == ""
    assert repository.edit_uri_for("https://github.com/example/cookbook") == "edit/main/docs/"

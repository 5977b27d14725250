"""What the site build does beyond MkDocs and its plugins, as plain functions.

The MkDocs hooks in hooks/ call these today; a build script for another generator can call
them tomorrow. None of them imports MkDocs; tests/site/test_hooks.py tests each without starting
a build.
"""

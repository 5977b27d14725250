"""One strict build of the site per test run, served on 127.0.0.1 under a base path."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import sys
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from cookbook_testing.pages import ROOT

BASE = "/cookbook/"  # served under a path, as on the hosted site
REPO_URL = "https://github.com/example/cookbook"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def built_site(tmp_path_factory, port) -> Path:
    """`mkdocs build --strict` as the Pages workflow builds the hosted site: with the site's
    address (the local server) and the repository's (REPO_URL). Without REPO_URL nothing
    links to a repository: tests/site/test_hooks.py checks each piece that would."""
    out = tmp_path_factory.mktemp("site") / BASE.strip("/")
    env = dict(os.environ, SITE_URL=f"http://127.0.0.1:{port}{BASE}", REPO_URL=REPO_URL,
               NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"strict build failed:\n{proc.stderr[-4000:]}")
    return out


@pytest.fixture(scope="session")
def site_url(built_site, port) -> str:
    handler = functools.partial(_QuietHandler, directory=str(built_site.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}{BASE}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


CHROMIUM = shutil.which(os.environ.get("CHROMIUM", "chromium")) or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        message = ("Debian's chromium is missing: run `make test` as root to install it, or "
                   "`sudo apt-get install chromium fonts-noto-cjk`")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


class Watched:
    """A page that records every request and every JavaScript error."""

    def __init__(self, browser):
        self.page = browser.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.failed: list[str] = []
        self.page.on("console", self._console)
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(r.url))

    def _console(self, message):
        # A failed load is logged here too; it is checked from the response itself below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def check(self):
        hosts = {urlparse(u).hostname for u in self.requests if not u.startswith("data:")}
        assert hosts <= {"127.0.0.1"}, f"requests left 127.0.0.1: {hosts}"
        assert self.errors == []
        # Material probes "<alternate>/sitemap.xml" for every hreflang alternate to map pages
        # across languages; the i18n plugin's alternates are the pages themselves, so that probe
        # 404s and Material uses the alternate links directly. Any other failed load fails.
        assert [u for u in self.failed if not u.endswith("/sitemap.xml")] == []


@pytest.fixture
def tab(browser):
    w = Watched(browser)
    yield w
    w.check()
    w.page.close()


@pytest.fixture(scope="module")
def module_tab(browser):
    """Opens tabs that serve every test of a module (a page that has loaded its search index
    keeps it), checked as `tab` is when the module ends."""
    opened = []

    def open_tab() -> Watched:
        opened.append(Watched(browser))
        return opened[-1]

    yield open_tab
    for w in opened:
        w.check()
        w.page.close()

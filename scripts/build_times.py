"""Where the time of `make build` and of a `make serve` rebuild goes.

    python scripts/build_times.py [--runs 3] [--edits 3] [--root DIR]

Runs the strict build `--runs` times (after one build that fills .cache/, as after
installation), each timed per step: every plugin's and hook's handler of every MkDocs event,
the Markdown render, the templates, copying static files. Then starts `mkdocs serve`, edits a
page `--edits` times (restored after) and measures from the write to the edited page being
served. Reports medians of CPU seconds (user + sys, what the machine's load changes least) and
wall seconds, with the load average, in build/reports/build-times.md. `--root` measures another
checkout (an older commit) with this script.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NO_MKDOCS_2_WARNING": "1", "NBCONVERT_DISABLE_CONFIG_EXPORTERS": "1", "OMP_NUM_THREADS": "1"}
EDITED = ("docs/concepts/adam.md", "concepts/adam/")

# Run in the child: time each event handler, the Markdown render and the templates (time spent
# in a nested step, such as the Japanese build inside the i18n plugin's post_build, is the
# nested step's only), then build as `mkdocs` would.
CHILD = r"""
import collections, json, sys, time
import jinja2.environment, mkdocs.plugins as plugins
import mkdocs.structure.files as files
from mkdocs.structure.pages import Page
steps, stack = collections.defaultdict(lambda: [0.0, 0.0]), []
def timed(step, function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    stack.append([0.0, 0.0])
    try:
        return function(*args, **kwargs)
    finally:
        inner = stack.pop()
        d_cpu, d_wall = time.process_time() - cpu, time.perf_counter() - wall
        steps[step][0] += d_cpu - inner[0]; steps[step][1] += d_wall - inner[1]
        if stack:
            stack[-1][0] += d_cpu; stack[-1][1] += d_wall
def run_event(self, name, item=None, **kwargs):
    pass_item = item is not None
    for method in self.events[name]:
        self._current_plugin = self._event_origins.get(method, "?")
        step = f"{self._current_plugin} {name}"
        result = timed(step, method, item, **kwargs) if pass_item else timed(step, method, **kwargs)
        item = item if result is None else result
    self._current_plugin = None
    return item
plugins.PluginCollection.run_event = run_event
def wrap(owner, name, step):
    original = getattr(owner, name)
    setattr(owner, name, lambda *a, **k: timed(step, original, *a, **k))
wrap(jinja2.environment.Template, "render", "templates (Jinja)")
wrap(files.Files, "copy_static_files", "copying static files")
render = Page.render
def timed_render(self, config, files):
    return timed("Markdown render (MkDocs)", render, self, config, files)
Page.render = timed_render
start = time.process_time(), time.perf_counter()
try:
    from mkdocs.__main__ import cli
    cli(["build", "--strict", "-q", "-d", sys.argv[1]], standalone_mode=False)
finally:
    total = time.process_time() - start[0], time.perf_counter() - start[1]
    steps["the rest (imports, configuration, files, nav, writing)"] = [
        total[0] - sum(v[0] for v in steps.values()), total[1] - sum(v[1] for v in steps.values())]
    print("STEPS " + json.dumps(steps), file=sys.stderr)
"""


def one_build(root: Path, site: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(site)], cwd=root, env={**os.environ, **ENV},
                          capture_output=True, text=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or "STEPS " not in proc.stderr:
        sys.exit(f"the build in {root} failed:\n{proc.stderr[-3000:]}")
    steps = json.loads(proc.stderr.split("STEPS ", 1)[1].splitlines()[0])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu": cpu, "wall": wall, "steps": steps}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + sys CPU seconds of a running process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_edits(root: Path, edits: int) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds of the server) from writing a page to `mkdocs serve` serving
    the edit, for each edit."""
    port, (page, path) = _free_port(), EDITED
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}"],
                            cwd=root, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/{path}"

    def served() -> str:
        try:
            return urllib.request.urlopen(url, timeout=10).read().decode("utf-8")
        except OSError:
            return ""

    source = root / page
    original = source.read_text(encoding="utf-8")
    times = []
    try:
        deadline = time.time() + 600
        while "</html>" not in served():
            if proc.poll() is not None or time.time() > deadline:
                sys.exit("mkdocs serve did not serve the site")
            time.sleep(0.3)
        time.sleep(2)
        for i in range(edits):
            marker = f"build-times-edit-{i}-{time.time_ns()}"
            lines = original.split("\n")
            h1 = next(n for n, line in enumerate(lines) if line.startswith("# "))
            written, cpu = time.perf_counter(), _cpu_seconds(proc.pid)
            source.write_text("\n".join(lines[:h1 + 1] + ["", marker] + lines[h1 + 1:]), encoding="utf-8")
            while marker not in served():
                if time.perf_counter() - written > 300:
                    sys.exit("the edit was never served")
                time.sleep(0.05)
            times.append((time.perf_counter() - written, _cpu_seconds(proc.pid) - cpu))
            time.sleep(2)
    finally:
        source.write_text(original, encoding="utf-8")
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return times


def report(root: Path, builds: list[dict], edits: list[tuple[float, float]]) -> str:
    med = statistics.median
    names = sorted({k for b in builds for k in b["steps"]},
                   key=lambda k: -med(b["steps"].get(k, [0, 0])[0] for b in builds))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                            text=True).stdout.strip() or "(not a git checkout)"
    lines = [
        "# Build and serve times",
        "",
        f"Measured {datetime.date.today()} by `python scripts/build_times.py` at {commit}, on "
        f"{os.cpu_count()} CPUs ({platform.machine()}), load average before: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}. Medians of {len(builds)} strict builds "
        "after one that filled `.cache/`. CPU seconds are user + sys of the whole process; a loaded "
        "machine stretches wall seconds, not CPU seconds.",
        "",
        "| step | CPU s | wall s |", "| --- | ---: | ---: |",
    ]
    for name in names:
        cpu, wall = (med(b["steps"].get(name, [0, 0])[i] for b in builds) for i in (0, 1))
        if cpu >= 0.01:
            lines.append(f"| {name} | {cpu:.2f} | {wall:.2f} |")
    lines.append(f"| **`mkdocs build --strict`, whole process** | **{med(b['cpu'] for b in builds):.2f}** | "
                 f"**{med(b['wall'] for b in builds):.2f}** |")
    if edits:
        lines += ["", f"`mkdocs serve`: a page edit was served after {med(w for w, _ in edits):.2f} s "
                  f"wall, {med(c for _, c in edits):.2f} CPU seconds of the server (medians of "
                  f"{len(edits)}: {', '.join(f'{w:.2f} s / {c:.2f} s' for w, c in edits)}); it hears of "
                  "the write from the kernel (hooks/serve_watch.py) and waits 0.1 s for more "
                  "before rebuilding."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "reports" / "build-times.md")
    args = parser.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        one_build(root, Path(tmp) / "site")  # fills .cache/
        builds = [one_build(root, Path(tmp) / "site") for _ in range(args.runs)]
    text = report(root, builds, serve_edits(root, args.edits) if args.edits else [])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

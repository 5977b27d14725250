"""Signal dispositions a test run must not inherit from how it was started.

A shell without job control starts a background command (`make test </dev/null >log 2>&1 &`,
a CI step's `&`, nohup) with SIGINT and SIGQUIT ignored, and an ignored signal stays ignored
across fork and exec: Python then installs no KeyboardInterrupt handler, and every program a
test starts (xdist workers, snippets run as scripts, tests/programs) inherits the same. Tests
of Ctrl-C and of handlers that chain to the previous one would then pass or fail depending on
the way the suite was launched. Every process of the run restores the defaults at start-up;
what a test starts inherits them (a Python handler is reset to the default by exec)."""

from __future__ import annotations

import os
import signal


def restore_default_signals() -> list[str]:
    """SIGINT -> KeyboardInterrupt, SIGQUIT -> default, where they were ignored; returns the
    names of those changed."""
    changed = []
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGQUIT, signal.SIG_DFL)):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, default)
            changed.append(sig.name)
    return changed


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a process from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the name, which may hold spaces
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[2])


def running(pid: int) -> bool:
    """The process exists and has not exited. A zombie has exited: it waits only for its
    parent to collect its status, and an orphan's new parent (PID 1 here) may take its time."""
    stat = _stat(str(pid))
    return stat is not None and stat[0] != "Z"


def group_running(pgid: int) -> bool:
    """Some process of the group exists and has not exited (zombies aside, as in `running`)."""
    return any(stat[1] == pgid and stat[0] != "Z"
               for stat in map(_stat, (p for p in os.listdir("/proc") if p.isdigit())) if stat)

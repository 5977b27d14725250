"""Signal dispositions a test run must not inherit from how it was started.

A shell without job control starts a background command (`make test </dev/null >log 2>&1 &`,
a CI step's `&`, nohup) with SIGINT and SIGQUIT ignored, and an ignored signal stays ignored
across fork and exec: Python then installs no KeyboardInterrupt handler, and every program a
test starts (xdist workers, snippets run as scripts, tests/programs) inherits the same. Tests
of Ctrl-C and of handlers that chain to the previous one would then pass or fail depending on
the way the suite was launched. Every process of the run restores the defaults at start-up;
what a test starts inherits them (a Python handler is reset to the default by exec)."""

from __future__ import annotations

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

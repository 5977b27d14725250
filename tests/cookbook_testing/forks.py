"""The loop of a program that tests restart many times: one process imports torch once, then
forks a fresh child per request (fork is cheap; importing torch for every restart is not)."""

from __future__ import annotations

import os
import sys
import traceback


def serve_forks(run, parse=str.strip) -> None:
    """For each line on stdin, fork a child that runs `run(parse(line))`, and print its pid,
    then its wait status. A child ends only by `os._exit` (its own code, or 3 after an
    exception) or by a signal: it never returns into this loop."""
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                run(parse(line))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(3)
        print(pid, flush=True)
        print(os.waitpid(pid, 0)[1], flush=True)

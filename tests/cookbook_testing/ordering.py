"""What starts first in a run, so that the two workers of `make test` finish together (xdist
hands out work in collection order): tests marked `slow`, then the groups that took longest
in the last run, as the pytest cache recorded them (setup and teardown included).

A group is an xdist_group (a page's blocks, a module that needs one worker) or else a test
module: the tests of a module stay together, so that a module-scoped fixture is built once
per worker, not again after each test of another module. Within a group the order stays as
collected: a page's blocks in order."""

from __future__ import annotations

DURATIONS = "cookbook/durations"  # the pytest cache's key: {group: seconds}


def group_of(item) -> str:
    mark = item.get_closest_marker("xdist_group")
    return mark.args[0] if mark else item.nodeid.split("::", 1)[0]


def start_order(item, last: dict[str, float]):
    group = group_of(item)
    return (item.get_closest_marker("slow") is None, -last.get(group, 0.0), group)

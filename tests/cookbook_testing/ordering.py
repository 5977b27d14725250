"""What starts first in a run, so that the two workers of `make test` finish together (xdist
hands out work in collection order): tests marked `slow`, then the groups (a page's blocks, a
module's xdist_group) and tests that took longest in the last run, as the pytest cache
recorded them. Within a group the order stays as collected: a page's blocks in order."""

from __future__ import annotations

DURATIONS = "cookbook/durations"  # the pytest cache's key: {group or node id: seconds}


def group_of(item) -> str:
    mark = item.get_closest_marker("xdist_group")
    return mark.args[0] if mark else item.nodeid


def start_order(item, last: dict[str, float]):
    return (item.get_closest_marker("slow") is None, -last.get(group_of(item), 0.0))

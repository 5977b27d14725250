"""`make serve` hears of an edit from the kernel (inotify on Linux), not from MkDocs' poll.

MkDocs serve polls every watched file every 0.5 s: an edit waits 0.25 s on average before the
rebuild starts, and the polling takes CPU from the rebuild. watchdog's native observer reports
the write at once. It is asked for writes only: by default it reports reads too (a file
opened, closed unwritten), and the build reads every page, snippet and output, thousands of
events that slow the build down and would each start the next one. Where watchdog has no
native observer for the platform it is a polling one itself, and the server is left as
MkDocs made it.
"""

from __future__ import annotations

import watchdog.events as e
import watchdog.observers
from watchdog.observers.polling import PollingObserver

# What changes a file; an edit saved by renaming a new file over the old one is a move.
WRITES = [e.FileCreatedEvent, e.FileModifiedEvent, e.FileMovedEvent, e.FileDeletedEvent,
          e.FileClosedEvent, e.DirCreatedEvent, e.DirMovedEvent, e.DirDeletedEvent]


class _NativeObserver(type(watchdog.observers.Observer())):
    def schedule(self, event_handler, path, *, recursive=False, event_filter=None):
        return super().schedule(event_handler, path, recursive=recursive,
                                event_filter=event_filter or WRITES)


def on_serve(server, config, builder):
    if issubclass(_NativeObserver, PollingObserver):
        return server
    # The paths watched so far (docs, mkdocs.yml), each watched again on the native observer;
    # what is watched after this event (the `watch:` entries) goes to it directly.
    watched = dict(server._watched_paths)
    for path, count in watched.items():
        for _ in range(count):
            server.unwatch(path)
    server.observer = _NativeObserver()
    for path, count in watched.items():
        for _ in range(count):
            server.watch(path)
    return server

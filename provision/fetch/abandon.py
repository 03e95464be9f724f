"""Letting a fetch that lost a race stop quietly.

A race (provision.platforms.race) runs several fetches in daemon threads and
takes the first answer; the others would go on retrying, and logging each
retry, until their own deadline. A thread still writing to a log when the
interpreter exits makes Python abort the whole process (status 134) after
the work was done. So a racing thread carries an event its retry loop
consults: once the race is decided, its next retry ends the fetch silently.
"""

from __future__ import annotations

import threading

from provision.errors import FetchError

_local = threading.local()


class Abandoned(FetchError):
    """The fetch lost its race; nobody waits for its result any more."""


def abandon_with(event: threading.Event) -> None:
    """The calling thread's fetches stop once ``event`` is set."""
    _local.event = event


def is_abandoned() -> bool:
    event: threading.Event | None = getattr(_local, "event", None)
    return event is not None and event.is_set()

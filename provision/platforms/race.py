"""Run a few ways of getting the config at once and take the first real answer.

Used for AWS's IPv4 and IPv6 addresses and for OpenStack's and CloudStack's config drives
against its metadata service. An answer counts when ``accept`` says so (a
missing config drive does not) or when it is an :class:`Answered` error (the
service replied, just not with what we wanted). Connection failures, which
keep retrying until the deadline, lose to any answer, but win over
unaccepted results: "no drive, and the service unreachable" is a failure. The losers run on in
daemon threads until their next retry, where they stop without a word
(provision.fetch.abandon): a thread still logging at exit aborts Python.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from provision.errors import FetchError
from provision.fetch.abandon import abandon_with
from provision.platforms.base import Context, NeedNetwork, Result

T = TypeVar("T")


class Answered(FetchError):
    """A service replied with a status that makes the fetch fail (not a timeout)."""


def first_answer(
    tasks: Sequence[Callable[[], T]], accept: Callable[[T], bool] = lambda _: True
) -> T:
    if len(tasks) == 1:
        return tasks[0]()
    results: queue.Queue[tuple[T | None, BaseException | None]] = queue.Queue()

    decided = threading.Event()

    def runner(task: Callable[[], T]) -> None:
        abandon_with(decided)  # a loser's retries end quietly once the race is decided
        try:
            results.put((task(), None))
        except BaseException as exc:  # handed to the caller's thread
            results.put((None, exc))

    for task in tasks:
        threading.Thread(target=runner, args=(task,), daemon=True).start()
    try:
        return _first_accepted(results, len(tasks), accept)
    finally:
        decided.set()


def _first_accepted(
    results: queue.Queue[tuple[T | None, BaseException | None]], count: int,
    accept: Callable[[T], bool],
) -> T:
    fallback: T | None = None
    have_fallback = False
    first_error: BaseException | None = None
    for _ in range(count):
        value, error = results.get()
        if error is None:
            # value may be None (a drive that is not there): not accepted, a fallback
            if accept(value):  # type: ignore[arg-type]
                return value  # type: ignore[return-value]
            fallback, have_fallback = value, True
        elif isinstance(error, Answered):
            raise error
        elif first_error is None:
            first_error = error
    # Nobody answered; a failure to reach a service beats "no drive here".
    if first_error is not None:
        raise first_error
    assert have_fallback
    return fallback  # type: ignore[return-value]


DriveReader = Callable[[Context, float | None, threading.Event | None], Result | None]


def drive_or_service(
    ctx: Context, platform: str, service: str, from_drive: DriveReader,
    from_service: Callable[[Context], Result | None],
) -> Result:
    """A config drive raced against a metadata service (OpenStack, CloudStack).

    Offline, only a drive present now can answer; online, the drive is watched
    for (it can appear late) while the service is asked, first answer wins.
    """
    if ctx.offline:
        drive = from_drive(ctx, 0, None)
        if drive is not None:
            return drive
        return NeedNetwork(f"{platform}: no config drive; the {service} needs the network")
    stop = threading.Event()
    try:
        answer = first_answer(
            [lambda: from_drive(ctx, ctx.settings.fetch_timeout, stop),
             lambda: from_service(ctx)],
            accept=lambda result: result is not None,
        )
    finally:
        stop.set()
    assert answer is not None  # the service never answers None
    return answer

"""Choosing new uids, gids and subordinate id ranges as shadow-utils 4.13 does.

Regular accounts take one more than the highest id in use in their range
(or the lowest free one once the top is reached); system accounts take one
less than the lowest id in use in theirs (or the highest free one once the
bottom is reached). A preferred
id (a user group's gid = the user's uid) wins when it is free and in range.
"""

from __future__ import annotations

from provision.accounts.defaults import IdRange
from provision.errors import ProvisionError


def choose_id(used: set[int], span: IdRange, system: bool, preferred: int | None = None) -> int:
    if preferred is not None and span.low <= preferred <= span.high and preferred not in used:
        return preferred
    if system:
        in_range = [i for i in used if span.low <= i <= span.high]
        lowest = min(in_range, default=span.high + 1)
        if lowest - 1 >= span.low:
            return lowest - 1
        for candidate in range(span.high, span.low - 1, -1):
            if candidate not in used:
                return candidate
    else:
        in_range = [i for i in used if span.low <= i <= span.high]
        highest = max(in_range, default=span.low - 1)
        if highest < span.high:
            return highest + 1
        for candidate in range(span.low, span.high + 1):
            if candidate not in used:
                return candidate
    raise ProvisionError(f"no free id left in {span.low}-{span.high}")


def choose_subordinate_range(taken: list[tuple[int, int]], span: IdRange, count: int) -> int:
    """The lowest start >= span.low of ``count`` ids overlapping no taken (start, count) range."""
    start = span.low
    for begin, length in sorted(taken):
        if begin + length <= start:
            continue
        if begin >= start + count:
            break
        start = begin + length
    if start + count - 1 > span.high:
        raise ProvisionError(f"no free subordinate id range of {count} in {span.low}-{span.high}")
    return start

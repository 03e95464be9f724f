"""A test seam: die abruptly after the Nth applied item.

Stages call :func:`item_done` after each item they change. With
``PROVISION_TEST_CRASH_AFTER=N`` in the environment the process exits with
``os._exit`` (no cleanup, no flushing: as close to SIGKILL as a test can ask
for) right after the Nth item, so tests can check that a rerun converges.
Unset (always, outside tests) it costs one integer comparison.
"""

from __future__ import annotations

import os

ENV = "PROVISION_TEST_CRASH_AFTER"
EXIT_STATUS = 86

_limit = int(os.environ.get(ENV, "0") or "0")
_count = 0


def item_done() -> None:
    global _count
    if _limit <= 0:
        return
    _count += 1
    if _count >= _limit:
        os._exit(EXIT_STATUS)

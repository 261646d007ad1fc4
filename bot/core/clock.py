"""The one place Loopline reads the time of day.

Everything that stores or compares a time (created_at, leases, schedules, digest periods) calls
`now()`. Tests pin it to a fixed instant that still moves forward (see tests/conftest.py), so a test
that seeds "the last seven days" never straddles a midnight or a DST change, whatever the hour.
Durations measured on this process's own timeline (sleeps, timeouts) use time.monotonic() instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _system() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _source()


def set_source(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); None restores the system clock."""
    global _source
    _source = source or _system


def running_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and advances with real time from there (leases still expire)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)

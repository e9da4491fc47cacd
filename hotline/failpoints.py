"""
Failpoints, and the other ways a test makes a process meet trouble.

Named places where a test may have a process kill itself with SIGKILL.

A crash test sets ``HOTLINE_FAILPOINT`` to a name; when the process reaches that
place it dies at once, as a power cut would take it, with nothing flushed and
no handler run. Unset (always, outside tests), a failpoint costs one lookup.

    station:after-receive   a delivery is stored (and its RECEIVED sealed), nothing sent yet
    station:accepted-held   the relay's ``accepted`` is taken in memory, its storing deferred
    relay:after-commit      a group of submissions is on disk, no one answered yet

A test of a wrong clock sets ``HOTLINE_CLOCK_OFFSET_SECONDS``: a station's processes
read the time from ``now()``, which then runs that many seconds ahead of the system
clock (behind, if negative).

A test of a full disk sets ``HOTLINE_STORE_MAX_PAGES``: every database the process
opens is capped at that many pages (SQLite's ``max_page_count``), and a write past
it fails as on a full disk, with ``SQLITE_FULL``.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

__all__ = ["now", "reached", "store_max_pages"]

_ARMED = os.environ.get("HOTLINE_FAILPOINT")
_MAX_PAGES = os.environ.get("HOTLINE_STORE_MAX_PAGES")
_CLOCK_SHIFT = timedelta(seconds=float(os.environ.get("HOTLINE_CLOCK_OFFSET_SECONDS") or 0))


def reached(name: str) -> None:
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)


def store_max_pages() -> int | None:
    return int(_MAX_PAGES) if _MAX_PAGES else None


def now() -> datetime:
    """The time for a station's processes: the system clock, moved by ``HOTLINE_CLOCK_OFFSET_SECONDS`` in a test."""
    return datetime.now(UTC) + _CLOCK_SHIFT

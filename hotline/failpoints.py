"""
Failpoints: named places where a test may have a process kill itself with SIGKILL.

A crash test sets ``HOTLINE_FAILPOINT`` to a name; when the process reaches that
place it dies at once, as a power cut would take it, with nothing flushed and
no handler run. Unset (always, outside tests), a failpoint costs one lookup.

    station:after-receive   a delivery is stored (and its RECEIVED sealed), nothing sent yet
    station:accepted-held   the relay's ``accepted`` is taken in memory, its storing deferred
    relay:after-commit      a group of submissions is on disk, no one answered yet
"""

from __future__ import annotations

import os
import signal

__all__ = ["reached"]

_ARMED = os.environ.get("HOTLINE_FAILPOINT")


def reached(name: str) -> None:
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)

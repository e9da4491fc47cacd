from __future__ import annotations

import pytest

from .harness import Line, make_line
from .test_crash_campaign import CAMPAIGN


@pytest.fixture
def line(tmp_path) -> Line:
    """A relay (running) and two stations (set up, not running), on 127.0.0.1 with real TLS."""
    made = make_line(tmp_path)
    made.start_relay()
    try:
        yield made
    finally:
        made.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    if CAMPAIGN:
        terminalreporter.section("crash campaign")
        for victim, figures in CAMPAIGN.items():
            terminalreporter.write_line(f"{victim}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

from __future__ import annotations

import pytest

from tests.chaos.network import FIGURES
from tests.integration.harness import Line, make_line


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
    if FIGURES:
        terminalreporter.section("a bad network, a flood")
        for name, figures in FIGURES:
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

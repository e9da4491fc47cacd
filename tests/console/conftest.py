from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import make_line


@pytest.fixture
def line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    made = make_line(tmp_path)
    monkeypatch.chdir(made.root)  # the stations' key files are named relative to it
    made.start_relay()
    try:
        yield made
    finally:
        made.stop()

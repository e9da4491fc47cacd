"""After a long fuzz run (``HOTLINE_FUZZ_EXAMPLES`` set), print how many cases each property ran.

Normal runs print nothing. ``HOTLINE_FUZZ_COUNTS=path`` also writes the counts as JSON
(``bench/fuzz_report.py`` reads them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .harness import COUNTS, EXAMPLES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    target = os.environ.get("HOTLINE_FUZZ_COUNTS")
    if target:
        Path(target).write_text(json.dumps(dict(COUNTS), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if not EXAMPLES or not COUNTS:
        return
    cases = {k: v for k, v in COUNTS.items() if not k.startswith(("known bug", "relay refusals", "station refusals"))}
    terminalreporter.section("hotline fuzz: cases run")
    for name, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{n:>10,}  {name}")
    terminalreporter.write_line(f"{sum(cases.values()):>10,}  cases in all (refusals and known bugs not counted again)")

"""docs/console.md's screenshots are made by docs/make_console_screens.py from a real line: it still makes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_the_screenshots_of_the_docs_are_made_from_a_real_line(tmp_path):
    spec = importlib.util.spec_from_file_location("make_console_screens", ROOT / "docs" / "make_console_screens.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = await module.make(tmp_path)
    assert [p.name for p in saved] == [f"console-{name}.svg" for name in module.SCREENS]
    shown = {p.stem.removeprefix("console-"): p.read_text() for p in saved}
    # Each screen shows what docs/console.md says it shows (Textual writes spaces as &#160;).
    assert "GRC-2026-000417" in shown["boards"]
    assert "RECEIVED" in shown["boards"]
    assert "READ_UNDERSTOOD" in shown["notice"]
    assert "ready&#160;to&#160;send" in shown["compose"]
    assert "HANDOVER" in shown["handover"]
    assert "cosigned&#160;by&#160;both" in shown["log"]
    assert "READ_UNDERSTOOD" in shown["help"]
    for name in module.SCREENS:
        assert (ROOT / "docs" / "console" / f"console-{name}.svg").exists(), (
            f"run docs/make_console_screens.py ({name})"
        )

"""Run every benchmark and write the table to bench/results/ (``make bench`` or ``python -m bench``).

Each row is a figure, the baseline measured in the same run, and their ratio,
because the machine is shared and noisy: absolute times move from run to run,
ratios much less.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

MODULES = ["bench.seal_bench", "bench.merkle_bench", "bench.line_bench", "bench.flood_bench"]
RESULTS = Path(__file__).parent / "results"


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| benchmark | value | baseline | baseline value | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = r["unit"]
        lines.append(
            f"| {r['name']} | {r['value']:.1f} {unit} | {r['baseline']} | {r['baseline_value']:.1f} {unit} "
            f"| {r['ratio']:.2f} | {r['target']} | {'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> int:
    only = sys.argv[1:]
    rows: list[dict[str, object]] = []
    for name in MODULES:
        if only and not any(o in name for o in only):
            continue
        print(f"running {name} ...", flush=True)
        rows.extend(importlib.import_module(name).run())
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = (
        f"# Benchmarks\n\nMade by `make bench` (`python -m bench`) at {stamp} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}.\n\n"
        f"{_table(rows)}\n"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("latest.md" if not only else f"partial-{'-'.join(only)}.md")
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"written to {out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

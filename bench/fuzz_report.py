"""Run the fuzz suite at a given size and report how many cases ran, and how long it took.

    .venv/bin/python bench/fuzz_report.py                      # 10,000 examples per property
    .venv/bin/python bench/fuzz_report.py --examples 500 --atheris-runs 200000 --out fuzz.md

The Hypothesis properties (``tests/fuzz/test_fuzz.py``) run with
``HOTLINE_FUZZ_EXAMPLES`` set; each counts the cases it ran (shrinking included)
into ``HOTLINE_FUZZ_COUNTS``. With ``--atheris-runs`` the coverage-guided fuzzer
(``tests/fuzz/atheris_decoders.py``, which needs ``pip install atheris``) runs too.
The table goes to standard output, and to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_properties(examples: int) -> tuple[dict[str, int], float, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        counts_file = Path(tmp) / "counts.json"
        env = dict(os.environ, HOTLINE_FUZZ_EXAMPLES=str(examples), HOTLINE_FUZZ_COUNTS=str(counts_file))
        command = [sys.executable, "-m", "pytest", "tests/fuzz", "-q", "-p", "no:cacheprovider"]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return counts, elapsed, done.returncode, summary


def run_atheris(runs: int) -> tuple[float, int, str]:
    command = [sys.executable, "tests/fuzz/atheris_decoders.py", f"-runs={runs}", "-print_final_stats=1"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    final = [line for line in done.stderr.splitlines() if re.match(r"#\d+\s+DONE|Done \d+ runs|stat::", line)]
    return elapsed, done.returncode, "\n".join(final) or done.stderr[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per Hypothesis property")
    parser.add_argument("--atheris-runs", type=int, default=0, help="atheris executions (0: skip)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    counts, elapsed, code, summary = run_properties(args.examples)
    cases = {k: v for k, v in counts.items() if not k.startswith(("known bug", "relay refusals", "station refusals"))}
    lines = [
        f"# Fuzz run: {args.examples:,} examples per property",
        "",
        f"pytest: {summary} (exit {code}), wall time {elapsed:.1f} s",
        "",
        "| property / counter | cases |",
        "|---|---|",
        *(f"| {name} | {n:,} |" for name, n in sorted(counts.items())),
        f"| **cases in all** | **{sum(cases.values()):,}** |",
    ]
    if args.atheris_runs:
        a_elapsed, a_code, a_summary = run_atheris(args.atheris_runs)
        lines += ["", f"atheris: {args.atheris_runs:,} runs, exit {a_code}, wall time {a_elapsed:.1f} s", "", "```"]
        lines += [a_summary, "```"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())

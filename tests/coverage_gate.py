"""Fail the test run when the protocol core's line coverage falls under the agreed floor."""

import json
import sys


def main() -> int:
    report, prefix, floor = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(report, encoding="utf-8") as f:
        files = json.load(f)["files"]
    covered = statements = 0
    for path, data in files.items():
        if path.replace("\\", "/").startswith(prefix):
            covered += data["summary"]["covered_lines"]
            statements += data["summary"]["num_statements"]
    if statements == 0:
        print(f"coverage gate: no files under {prefix}")
        return 1
    percent = 100.0 * covered / statements
    print(f"coverage of {prefix}: {percent:.1f}% of {statements} statements (floor {floor:.0f}%)")
    return 0 if percent >= floor else 1


if __name__ == "__main__":
    sys.exit(main())

"""Time of writing a JSON audit report, against ``json.dumps(indent=2)`` measured in the same run.

Run from the project root, with each interpreter the package supports::

    python benchmarks/report_json_bench.py [--size 400] [--runs 30]

Audits this host with the shipped baseline policy (``hostguard audit --format json``), then repeats
its results (ids made unique) until the indented report is about ``--size`` KB, as a busy host's
report with many evidence rows is. Times, each the median of ``--runs``:

* ``json.dumps(indent=2, ensure_ascii=True)``: what ``agent.report.json`` and
  ``agent.core.sarif`` write;
* ``json.dumps`` without indent: the C encoder alone (Python 3.11 and 3.12 indent in pure Python,
  3.13 and later in C, so the gap between these two lines is the version's indent cost);
* ``msgspec.json.encode`` + ``msgspec.json.format(indent=2)`` when msgspec is importable (it is not
  a dependency): shown with whether its bytes equal the report's (they differ where the report has
  non-ASCII text, which msgspec writes raw, or floats, which it spells its own way).

Prints each time and its ratio to the first. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import installed

PROJECT = Path(__file__).resolve().parent.parent
POLICY = PROJECT / "policies" / "trading-baseline.yaml"


def host_report() -> dict[str, Any]:
    """This host's report under the shipped baseline, as ``hostguard audit`` writes it."""
    with tempfile.TemporaryDirectory(prefix="report-json-bench-") as tmp:
        out = Path(tmp) / "report.json"
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy", str(POLICY),
                               "--format", "json", "--output", str(out)], cwd=PROJECT,
                              capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1, 3):  # pass, fail, waived: the audit ran
            sys.exit(f"report_json_bench: the audit exited {done.returncode}\n{done.stderr}")
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report


def grown(report: dict[str, Any], size: int) -> dict[str, Any]:
    """``report`` with its results repeated until its indented text has ``size`` characters."""
    results = report["results"]
    grown_results: list[dict[str, Any]] = []
    text_size = len(json.dumps({**report, "results": []}, indent=2))
    while text_size < size:
        result = copy.deepcopy(results[len(grown_results) % len(results)])
        result["id"] = f"{result['id']}-{len(grown_results)}"
        grown_results.append(result)
        text = json.dumps(result, indent=2)
        text_size += len(text) + 4 * (text.count("\n") + 1) + 2  # indented 4 deeper, ",\n"
    return {**report, "results": grown_results}


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=400, help="report size in KB (default 400)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if min(args.size, args.runs) < 1:
        parser.error("--size and --runs must be at least 1")
    doc = grown(host_report(), args.size * 1000)
    expected = json.dumps(doc, indent=2, ensure_ascii=True)
    print(f"Python {sys.version.split()[0]}: report of {len(doc['results'])} results, "
          f"{len(expected) / 1000:.0f} KB indented")
    rows: list[tuple[str, float, str]] = [
        ("json.dumps(indent=2)", median_ms(lambda: json.dumps(doc, indent=2, ensure_ascii=True),
                                           args.runs), "what the reports write"),
        ("json.dumps, no indent", median_ms(lambda: json.dumps(doc), args.runs),
         "the C encoder alone"),
    ]
    msgspec = installed("msgspec")
    if msgspec is not None:
        def encode() -> bytes:
            text: bytes = msgspec.json.format(msgspec.json.encode(doc), indent=2)
            return text

        same = encode().decode("utf-8") == expected
        rows.append(("msgspec encode + format", median_ms(encode, args.runs),
                     f"bytes {'equal' if same else 'differ from'} the report's"))
    reference = rows[0][1]
    for name, ms, note in rows:
        print(f"{name:24} {ms:8.2f} ms  {ms / reference:5.2f}x  ({note})")
    if msgspec is None:
        print("msgspec is not importable here: its line is left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())

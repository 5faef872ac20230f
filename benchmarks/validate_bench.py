"""What a fast-path validator saves, against jsonschema measured in the same run.

Run from the project root::

    python benchmarks/validate_bench.py [--runs 9] [--reports 200]

Two real inputs, each validated three ways: ``jsonschema`` (``Draft202012Validator``, what
words every error), ``agent.core.quickcheck.accepts`` (the fast path the package uses: it
only ever says "certainly valid", otherwise jsonschema decides), and fastjsonschema when it is
importable (code generated from the schema read as draft-07; not a dependency, the line is there
to weigh it).

* The shipped policies (``policies/*.yaml``) against the policy schema, in a fresh interpreter
  each run, as a one-shot ``hostguard audit`` or ``lint`` pays it: import, build, validate.
* ``--reports`` copies of this host's audit report (``hostguard audit --format json`` under the
  shipped baseline) against the result schema, in process, as ``report merge`` loads a fleet.

Prints each median and its ratio to jsonschema's; exits 1 when a fast path did not accept a
valid input (then it saves nothing there). Nothing is asserted about time.
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

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from common import installed  # noqa: E402 - beside this script

from agent.core.quickcheck import accepts  # noqa: E402 - after the path set-up above
from agent.report.load import schema as result_schema  # noqa: E402

POLICY_SETUP = """
import sys, time
sys.path.insert(0, {project!r})
from agent.policy.schema import shipped
from agent.core.yamlload import load_file
from pathlib import Path
schema = shipped()
docs = [load_file(p, p.name).data for p in sorted(Path({project!r}, "policies").glob("*.yaml"))]
start = time.perf_counter()
"""

POLICY_WAYS = {
    "jsonschema": """
from jsonschema import Draft202012Validator
check = Draft202012Validator(schema)
ok = all(not any(check.iter_errors(d)) for d in docs)
""",
    "quickcheck": """
from agent.core.quickcheck import accepts
ok = all(accepts(schema, d) for d in docs)
""",
    "fastjsonschema": """
import fastjsonschema
check = fastjsonschema.compile({**schema, "$schema": "http://json-schema.org/draft-07/schema#"})
ok = all(check(d) is not None for d in docs)
""",
}

POLICY_END = """
print((time.perf_counter() - start) * 1000, ok)
"""


def policy_cold(way: str, runs: int) -> tuple[float, bool]:
    """Median ms of import + build + validating every shipped policy, in a fresh interpreter."""
    code = POLICY_SETUP.format(project=str(PROJECT)) + POLICY_WAYS[way] + POLICY_END
    times, accepted = [], True
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        ms, ok = done.stdout.split()
        times.append(float(ms))
        accepted = accepted and ok == "True"
    return statistics.median(times), accepted


def host_report() -> dict[str, Any]:
    """This host's report under the shipped baseline."""
    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        out = Path(tmp) / "report.json"
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy",
                               str(PROJECT / "policies" / "trading-baseline.yaml"),
                               "--format", "json", "--output", str(out)], cwd=PROJECT,
                              capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1, 3):
            sys.exit(f"validate_bench: the audit exited {done.returncode}\n{done.stderr}")
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report


def median_ms(fn: Callable[[], bool], runs: int) -> tuple[float, bool]:
    """Median ms of ``fn`` and whether it answered True every time."""
    times, ok = [], True
    for _ in range(runs):
        start = time.perf_counter()
        ok = fn() and ok
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--reports", type=int, default=200)
    args = parser.parse_args()
    if min(args.runs, args.reports) < 1:
        parser.error("--runs and --reports must be at least 1")
    fastjsonschema = installed("fastjsonschema")
    ways = ["jsonschema", "quickcheck"] + (["fastjsonschema"] if fastjsonschema else [])
    if len(ways) < 3:
        print("fastjsonschema is not importable here: its lines are left out")
    print(f"Python {sys.version.split()[0]}; ms (ratio to jsonschema)")
    failed = []
    policies = len(list((PROJECT / "policies").glob("*.yaml")))
    print(f"{policies} shipped policies, fresh interpreter (import + build + validate):")
    reference = 0.0
    for way in ways:
        ms, ok = policy_cold(way, args.runs)
        reference = reference or ms
        print(f"  {way:16} {ms:9.2f} ms  ({ms / reference:.2f}x){'' if ok else '  NOT ACCEPTED'}")
        if not ok:
            failed.append(f"{way} on the policies")
    report = host_report()
    schema = result_schema()
    docs = [json.loads(json.dumps(report)) for _ in range(args.reports)]  # apart, as files load
    size = len(json.dumps(report)) / 1000
    print(f"{args.reports} reports of {len(report['results'])} results ({size:.0f} KB each), "
          "in process, built once:")
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    validator = Draft202012Validator(schema)
    checks: dict[str, Callable[[], bool]] = {
        "jsonschema": lambda: all(validator.is_valid(d) for d in docs),
        "quickcheck": lambda: all(accepts(schema, d) for d in docs),
    }
    if fastjsonschema:
        # A copy: fastjsonschema rewrites the schema's $refs in place.
        compiled = fastjsonschema.compile(
            {**copy.deepcopy(schema), "$schema": "http://json-schema.org/draft-07/schema#"})
        checks["fastjsonschema"] = lambda: all(compiled(d) is not None for d in docs)
    reference = 0.0
    for way, check in checks.items():
        ms, ok = median_ms(check, args.runs)
        reference = reference or ms
        print(f"  {way:16} {ms:9.2f} ms  ({ms / reference:.2f}x){'' if ok else '  NOT ACCEPTED'}")
        if not ok:
            failed.append(f"{way} on the reports")
    for what in failed:
        print(f"validate_bench: {what}: a valid input was not accepted", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time of ``hostguard report merge`` over a synthetic fleet of result JSONs.

Run from the project root::

    python benchmarks/fleet_bench.py [--hosts 500] [--checks 200] [--runs 3]

Writes ``--hosts`` ``hostguard/result/v1`` files of ``--checks`` results each (a fixed
pseudo-random mix: about 10% fail with process evidence rows, 3% error, 2% waived, 5% not
applicable, the rest pass), then times, ``--runs`` times each: loading the files (JSON parse and
schema validation, in process), ``fleet.render`` alone on the loaded runs, and the whole command
``python -m agent report merge FILES -o fleet.html`` as a process. Prints the medians and the
page size. Nothing is asserted about time: the exit status is non-zero only when merge failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from agent.core.location import Location  # noqa: E402
from agent.host.facts import HostFacts  # noqa: E402 - after the path set-up above
from agent.policy.model import Check, Severity, Waiver  # noqa: E402
from agent.report import fleet  # noqa: E402
from agent.report import json as json_report  # noqa: E402
from agent.report.load import load_run  # noqa: E402
from agent.result import AuditRun, Evidence, PolicyFile, Result, Status  # noqa: E402

KINDS = ("sysctl", "sysfs", "kernel_cmdline", "process", "ports", "cgroup")


def checks(n: int) -> list[Check]:
    """``n`` checks shared by every host (so the matrix is dense)."""
    severities = tuple(Severity)
    return [Check(id=f"CHK-{i:03d}", kind=KINDS[i % len(KINDS)],
                  title=f"Generated check {i} keeps the host hardened",
                  severity=severities[i % len(severities)], rationale="r" * 80,
                  remediation="m" * 80, references=("CIS 1.2.3",), spec={},
                  raw_spec={"key": f"k{i}"},
                  location=Location("policies/fleet.yaml", 10 + 9 * i, 5),
                  policy="fleet")
            for i in range(n)]


def host_run(index: int, all_checks: Sequence[Check], rng: random.Random) -> AuditRun:
    """One host's run with a fixed pseudo-random status mix."""
    results = []
    for check in all_checks:
        roll = rng.random()
        waiver, waived = None, None
        items: tuple[dict[str, object], ...] = ()
        if roll < 0.10:
            status = Status.FAIL
            items = tuple({"pid": 1000 + k, "name": f"proc{k}", "user": "root", "uid": 0,
                           "cmdline": f"/usr/bin/proc{k} --serve"} for k in range(3))
        elif roll < 0.13:
            status = Status.ERROR
        elif roll < 0.15:
            status, waived = Status.WAIVED, Status.FAIL
            waiver = Waiver(check.id, "change CHG-1", dt.date(2030, 1, 1), (),
                            Location("policies/fleet.yaml", 5, 7))
        elif roll < 0.20:
            status = Status.NOT_APPLICABLE
        else:
            status = Status.PASS
        results.append(Result(check, status, f"{check.id} {status.value}",
                              Evidence(f"{check.id} expected", status.value, items),
                              waiver, waived, 0.1))
    counts = {s.value: sum(1 for r in results if r.status is s) for s in Status}
    return AuditRun(host=HostFacts(f"trd-{index:04d}", "6.1.0-18-amd64", "#1 SMP", f"boot-{index}",
                                   f"m{index}", "x86_64", "Debian 12"),
                    root="/", labels={"role": "gateway"},
                    policies=(PolicyFile("policies/fleet.yaml", "fleet", "1", "ab" * 32),),
                    policy_digest="cd" * 32, started="2026-06-01T10:00:00Z", duration_ms=100.0,
                    results=tuple(results), tool_version="0.1.0", counts=counts)


def write_fleet(folder: Path, hosts: int, n_checks: int) -> list[Path]:
    """The result files, one per host."""
    rng = random.Random(6)
    all_checks = checks(n_checks)
    paths = []
    for i in range(hosts):
        path = folder / f"trd-{i:04d}.json"
        path.write_text(json_report.render(host_run(i, all_checks, rng)), encoding="utf-8")
        paths.append(path)
    return paths


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """(median seconds, last result)."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if min(args.hosts, args.checks, args.runs) < 1:
        parser.error("--hosts, --checks and --runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        folder = Path(tmp)
        paths = write_fleet(folder, args.hosts, args.checks)
        size = sum(p.stat().st_size for p in paths)
        print(f"synthetic fleet: {args.hosts} hosts x {args.checks} checks, "
              f"{size / 1e6:.1f} MB of result JSON")

        def load() -> list[AuditRun]:
            return [load_run(json.loads(p.read_text(encoding="utf-8"))) for p in paths]

        load_s, runs = timed(load, args.runs)
        assert isinstance(runs, list)
        render_s, page = timed(lambda: fleet.render(runs), args.runs)
        assert isinstance(page, str)
        print(f"load:   median {load_s:.2f} s (JSON parse + schema validation + rebuild)")
        print(f"render: median {render_s:.2f} s (fleet.render; page {len(page.encode()) / 1e6:.1f}"
              " MB)")
        out = folder / "fleet.html"
        command = [sys.executable, "-m", "agent", "report", "merge", *map(str, paths),
                   "-o", str(out)]
        codes: list[int] = []

        def merge() -> None:
            done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True,
                                  check=False)
            codes.append(done.returncode)
            if done.returncode:
                sys.stderr.write(done.stderr)

        cli_s, _ = timed(merge, args.runs)
        if any(codes):
            print(f"fleet_bench: report merge exited {max(codes)}", file=sys.stderr)
            return 1
        print(f"merge:  median {cli_s:.2f} s (python -m agent report merge, whole process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

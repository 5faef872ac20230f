"""Time and peak memory of ``hostguard report merge`` over a synthetic fleet of result JSONs.

Run from the project root::

    python benchmarks/fleet_bench.py [--hosts 1000] [--checks 200] [--runs 3]

Writes ``--hosts`` ``hostguard/result/v1`` files of ``--checks`` results each (a fixed
pseudo-random mix: about 10% fail with process evidence rows, 3% error, 2% waived, 5% not
applicable, the rest pass), then runs, ``--runs`` rounds of each, as processes: the reference,
a Python that only reads and parses every file (``json.loads``, nothing kept: the floor any merge
of these files pays), and the whole command ``python -m agent report merge FILES -o fleet.html``.
Prints, for each, the median and the least wall time and the peak RSS (``ru_maxrss`` of the
process), the merge's ratios (of the medians) to the reference and the page size; then, in this
process, the median time of loading one file (parse, schema validation, rebuild:
``load_run``) and of ``fleet.render`` alone over the loaded runs. Nothing is asserted about
time: the exit status is non-zero only when merge failed.
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
from collections.abc import Sequence
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


PEAK = """import atexit, resource, runpy, sys
out = sys.argv.pop(1)
def peak() -> None:
    with open("/proc/self/status") as status, open(out, "w") as f:
        f.write(next(l.split()[1] for l in status if l.startswith("VmHWM:")) + " ")
        f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
atexit.register(peak)
sys.argv.pop(0)
if sys.argv[0] == "-m":
    sys.argv.pop(0)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    exec(sys.argv.pop(1))
"""
"""Runs ``-m MODULE ARGS`` or ``-c CODE ARGS`` and writes its peak RSS (``VmHWM``, KiB) to the
file named first: the figure of its own address space, where ``ru_maxrss`` (even the process's
own) counts what the parent held when it forked; then the largest peak of its worker processes
(``ru_maxrss`` of its children: they fork from it early, while it is small)."""


def measured(argv: Sequence[str], peak_file: Path) -> tuple[float, int, int, int]:
    """(wall seconds, peak RSS and largest worker's peak RSS in KiB, exit code) of
    ``python ARGV`` as a process."""
    command = [sys.executable, "-c", PEAK, str(peak_file), *argv]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr.decode(errors="replace"))
    own, workers = (int(n) for n in peak_file.read_text(encoding="ascii").split())
    return elapsed, own, workers, done.returncode


def rounds(commands: dict[str, list[str]], runs: int, peak_file: Path
           ) -> dict[str, tuple[float, float, int, int, int]]:
    """Median and least seconds, highest peak RSS and worker peak RSS (KiB) and highest exit code
    of each command; each round runs every command once, so drift in the machine's load weighs
    on all of them alike."""
    seen: dict[str, list[tuple[float, int, int, int]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            seen[name].append(measured(argv, peak_file))
    return {name: (statistics.median(g[0] for g in got), min(g[0] for g in got),
                   max(g[1] for g in got), max(g[2] for g in got), max(g[3] for g in got))
            for name, got in seen.items()}


def load(path: Path) -> AuditRun:
    """One result file as ``report merge`` reads it."""
    return load_run(json.loads(path.read_bytes()))


def load_one(paths: Sequence[Path], runs: int) -> float:
    """Median seconds to load one file, over up to 50 files, ``runs`` times each."""
    times = []
    for path in paths[:50]:
        for _ in range(runs):
            start = time.perf_counter()
            load(path)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def render_time(paths: Sequence[Path], runs: int) -> float:
    """Median seconds of ``fleet.render`` over every file's run, loaded beforehand."""
    loaded = [load(p) for p in paths]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fleet.render(loaded)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


PARSE_ONLY = ("import json, sys\nfor p in sys.argv[1:]:\n"
              "    with open(p, 'rb') as f: json.loads(f.read())")
"""The reference: read and parse every file, keep nothing."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
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
        out = folder / "fleet.html"
        files = [str(p) for p in paths]
        got = rounds({"parse": ["-c", PARSE_ONLY, *files],
                      "merge": ["-m", "agent", "report", "merge", *files, "-o", str(out)]},
                     args.runs, folder / "peak")
        ref_s, ref_min, ref_kib, _, ref_code = got["parse"]
        merge_s, merge_min, merge_kib, worker_kib, merge_code = got["merge"]
        if ref_code or merge_code:
            print(f"fleet_bench: exit {ref_code} (parse), {merge_code} (merge)", file=sys.stderr)
            return 1
        print(f"parse:  median {ref_s:.2f} s, min {ref_min:.2f} s, peak RSS "
              f"{ref_kib / 1024:.0f} MiB (reference: read + json.loads every file, whole process)")
        print(f"merge:  median {merge_s:.2f} s, min {merge_min:.2f} s, peak RSS "
              f"{merge_kib / 1024:.0f} MiB, largest "
              f"worker {worker_kib / 1024:.0f} MiB (python -m agent report merge, whole process; "
              f"page {out.stat().st_size / 1e6:.1f} MB)")
        print(f"ratio:  merge / parse {merge_s / ref_s:.2f}x time, "
              f"{merge_kib / ref_kib:.2f}x peak RSS")
        print(f"one file: median {load_one(paths, args.runs) * 1000:.2f} ms (read, JSON parse, "
              "schema validation, rebuild)")
        render_s = render_time(paths, args.runs)
        print(f"render: median {render_s:.2f} s (fleet.render of the loaded runs, in process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

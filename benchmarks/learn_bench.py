"""How long ``hostguard seccomp learn`` takes over a large kernel log.

Run from the project root::

    python benchmarks/learn_bench.py [--lines 100000] [--runs 5]

Writes a dmesg-style log of ``--lines`` lines (one in ten a seccomp record, of 50 processes
and 20 syscalls; the rest other kernel messages) and times, each the median of ``--runs``:
parsing it (``agent.host.seccomp_log.read_file``) and the whole command (a subprocess, start-up
included). Prints the times and the lines per second. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from agent.host import seccomp_log  # noqa: E402 - after the path set-up above

PROFILE = ("apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata:\n  name: bench\n"
           "default_action: {errno: 1}\nrules:\n  - syscalls: [read, write]\n    action: allow\n")
SYSCALLS = (0, 1, 2, 3, 9, 10, 11, 12, 13, 14, 39, 41, 42, 56, 60, 62, 63, 102, 231, 257)


def write_log(path: Path, lines: int) -> None:
    with path.open("w") as out:
        for n in range(lines):
            stamp = f"[{n / 1000:12.6f}] "
            if n % 10:
                out.write(f"{stamp}eth0: link up, 10Gbps, full duplex, flow control rx/tx {n}\n")
                continue
            pid = 1000 + n % 50
            out.write(f"{stamp}audit: type=1326 audit(1700000000.{n % 1000:03d}:{n}): "
                      f"auid=4294967295 uid=0 gid=0 ses=4294967295 pid={pid} comm=\"app{pid}\" "
                      f"exe=\"/opt/app/bin/app\" sig=0 arch=c000003e "
                      f"syscall={SYSCALLS[n % len(SYSCALLS)]} compat=0 ip=0x7f472dea4ca3 "
                      "code=0x7ffc0000\n")


def median(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.lines < 1 or args.runs < 1:
        parser.error("--lines and --runs must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        log, profile = Path(tmp) / "kern.log", Path(tmp) / "p.yaml"
        write_log(log, args.lines)
        profile.write_text(PROFILE)
        parsed = seccomp_log.read_file(log)
        print(f"log: {args.lines} lines, {len(parsed.events)} seccomp records, "
              f"{parsed.malformed} malformed")
        parse = median(args.runs, lambda: seccomp_log.read_file(log))
        command = [sys.executable, "-m", "agent", "seccomp", "learn", str(profile), "--since",
                   "2023-01-01T00:00:00", "--source", str(log)]
        status = subprocess.run(command, cwd=PROJECT, capture_output=True, check=False).returncode
        whole = median(args.runs, lambda: subprocess.run(command, cwd=PROJECT,
                                                         capture_output=True, check=False))
    print(f"parse:  median {parse * 1000:.1f} ms ({args.lines / parse:,.0f} lines/s)")
    print(f"learn:  median {whole * 1000:.1f} ms, whole command (exit {status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

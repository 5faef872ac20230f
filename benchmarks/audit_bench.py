"""Audit speed on a synthetic busy host, against ``ss`` and ``ps`` measured in the same run.

Builds the host inside its own PID, mount and network namespaces (``unshare``), so the host's
own processes and listeners play no part: by default 2,000 processes and 20,000 sockets, a few
hundred of them listening. Socket-holding processes are ``sleep`` binaries that inherited their
sockets, so the synthetic host costs little memory. Then it times, as whole processes:

* ``ss -H -tulpn`` (the reference: what an operator would run to list listeners with owners),
* ``ps -eo pid,comm``,
* ``hostguard audit`` with port, process and sysctl checks, JSON report to a file,

and prints medians, the ratios audit/ss and audit/(ss + ps), the audit's peak RSS, and how its
time splits (interpreter start, imports timed apart, snapshot + checks as the report says, the
rest).
Nothing is asserted: the figures are for reading. Needs root (namespaces).

    python benchmarks/audit_bench.py [--procs 2000] [--sockets 20000] [--listeners 400]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SLEEP = shutil.which("sleep") or "/bin/sleep"
PAIRS_PER_HOLDER = 24
"""Each socket holder has one listener and this many connected pairs (2 sockets a pair)."""


def policy_text(listener_base: int) -> str:
    """Port, process and sysctl checks over the synthetic host."""
    return f"""apiVersion: hostguard/v1
kind: Policy
metadata: {{name: bench}}
checks:
  - id: B-PORT-1
    kind: ports
    title: only the gateway listens
    severity: high
    rationale: bench
    remediation: bench
    spec:
      allow:
        - {{port: "{listener_base}-{listener_base + 99}", proto: tcp, process: "fixgw*"}}
      deny_unlisted: true
  - id: B-PORT-2
    kind: ports
    title: no telnet
    severity: critical
    rationale: bench
    remediation: bench
    spec: {{forbid: [23, 111], namespaces: all}}
  - id: B-PROC-1
    kind: process
    title: no telnetd
    severity: high
    rationale: bench
    remediation: bench
    spec: {{name: "*telnetd*", forbidden: true}}
  - id: B-PROC-2
    kind: process
    title: gateway runs
    severity: high
    rationale: bench
    remediation: bench
    spec: {{name: "fixgw*", required: true}}
  - id: B-SYS-1
    kind: sysctl
    title: kptr
    severity: high
    rationale: bench
    remediation: bench
    spec: {{key: kernel.kptr_restrict, op: ge, value: 1}}
"""


AUDIT_IMPORTS = ("import gc; gc.disable(); import agent.cli.audit, agent.host.prefetch, "
                 "agent.audit, agent.core.atomic, agent.lint.engine, agent.lint.documents, "
                 "agent.report.json, agent.report.text, agent.report.writer, agent.checks.ports, "
                 "agent.checks.process, agent.checks.sysctl")
"""What the audit of the bench policy imports, as it does (the collector paused), timed apart
to show the split. The audit's fd walk runs in a helper process meanwhile (agent/host/prefetch.py),
so its time is in neither figure unless the audit had to wait for it."""


def spawn_holder(names: Path, index: int, port: int, udp: bool, pairs: int) -> int:
    """Fork a child that opens its sockets, then execs ``sleep`` keeping them open."""
    pid = os.fork()
    if pid:
        return pid
    try:
        kept = []
        if udp:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.bind(("::", port))
            kept.append(sock)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(pairs + 8)
            kept.append(listener)
            for _ in range(pairs):
                client = socket.create_connection(("127.0.0.1", port))
                server, _ = listener.accept()
                kept += [client, server]
        for sock in kept:
            os.set_inheritable(sock.fileno(), True)
        name = "fixgw" if index % 2 == 0 else "mdfeed"
        os.execv(str(names / name), [name, "infinity"])
    finally:
        os._exit(127)


def build_host(procs: int, sockets: int, listeners: int, names: Path) -> tuple[list[int], int]:
    """Start the synthetic host's processes; returns their pids and the sockets they hold."""
    per_holder = 1 + 2 * PAIRS_PER_HOLDER
    tcp_holders = min(listeners, max(1, sockets // per_holder))
    udp_holders = max(0, listeners - tcp_holders)
    pids = []
    base = 20000
    for i in range(tcp_holders):
        pids.append(spawn_holder(names, i, base + i, False, PAIRS_PER_HOLDER))
    for i in range(udp_holders):
        pids.append(spawn_holder(names, i, base + tcp_holders + i, True, 0))
    for _ in range(max(0, procs - len(pids))):
        pids.append(os.posix_spawn(SLEEP, ["sleep", "infinity"], os.environ))
    return pids, tcp_holders * per_holder + udp_holders


def wait_for_sockets(expected: int, deadline: float) -> int:
    """Poll the socket count until the holders are ready (or the deadline passes)."""
    count = 0
    while time.monotonic() < deadline:
        count = sum(max(0, len(Path(f"/proc/net/{t}").read_text().splitlines()) - 1)
                    for t in ("tcp", "tcp6", "udp", "udp6"))
        if count >= expected:
            break
        time.sleep(0.2)
    return count


def timed(commands: dict[str, list[str]], runs: int,
          after: Callable[[str], object] = lambda name: None) -> dict[str, tuple[float, int, int]]:
    """Median wall seconds, peak RSS (KiB) and last exit code of each command over ``runs``
    rounds; each round runs every command once, so drift in the host's speed (caches, other
    load) weighs on all of them alike. ``after`` is called with a command's name once it has
    run."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    peak = dict.fromkeys(commands, 0)
    code = dict.fromkeys(commands, 0)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=env, cwd=PROJECT)
            _, status, usage = os.wait4(proc.pid, 0)
            times[name].append(time.perf_counter() - start)
            peak[name] = max(peak[name], usage.ru_maxrss)
            code[name] = os.waitstatus_to_exitcode(status)
            after(name)
    return {name: (statistics.median(times[name]), peak[name], code[name]) for name in commands}


def inner(args: argparse.Namespace) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # As installed (pip compiles the package): with PYTHONDONTWRITEBYTECODE set, a module
    # changed since its last compile would otherwise be compiled again by every timed run.
    compileall.compile_dir(PROJECT / "agent", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="hg-audit-bench-"))
    names = work / "bin"
    names.mkdir()
    for name in ("fixgw", "mdfeed"):
        (names / name).symlink_to(SLEEP)
    policy = work / "bench.yaml"
    policy.write_text(policy_text(20000), encoding="utf-8")
    started = time.monotonic()
    pids, expected = build_host(args.procs, args.sockets, args.listeners, names)
    found = wait_for_sockets(expected, time.monotonic() + 120)
    built = time.monotonic() - started
    processes = sum(1 for p in os.listdir("/proc") if p.isdigit())
    report = work / "report.json"
    audit_argv = [sys.executable, "-m", "agent", "audit", "--policy", str(policy),
                  "--format", "json", "--output", str(report)]
    inside: list[float] = []  # the audit's own duration_ms, each run

    def read_inside(name: str) -> None:
        if name == "audit" and report.exists():
            inside.append(json.loads(report.read_text())["duration_ms"])

    measured = timed({"ss": ["ss", "-H", "-tulpn"], "ps": ["ps", "-eo", "pid,comm"],
                      "floor": [sys.executable, "-c", "pass"], "audit": audit_argv,
                      "imports": [sys.executable, "-c", AUDIT_IMPORTS]}, args.runs, read_inside)
    ss, ps, floor, audit, imports = (measured[name]
                                     for name in ("ss", "ps", "floor", "audit", "imports"))
    listening = int(subprocess.run(["sh", "-c", "ss -H -tuln | wc -l"], capture_output=True,
                                   text=True, check=True).stdout)
    inside_ms = statistics.median(inside) if inside else float("nan")
    print(f"synthetic host: {processes} processes, {found} sockets ({listening} listening), "
          f"built in {built:.1f} s")
    print(f"ss -H -tulpn        {ss[0] * 1000:8.1f} ms  (peak RSS {ss[1] / 1024:.1f} MiB)")
    print(f"ps -eo pid,comm     {ps[0] * 1000:8.1f} ms")
    print(f"python -c pass      {floor[0] * 1000:8.1f} ms  (interpreter floor)")
    print(f"hostguard audit     {audit[0] * 1000:8.1f} ms  (exit {audit[2]}; snapshot + checks "
          f"{inside_ms:.1f} ms inside (median); peak RSS {audit[1] / 1024:.1f} MiB)")
    print(f"ratio audit / ss          {audit[0] / ss[0]:.2f}x")
    print(f"ratio audit / (ss + ps)   {audit[0] / (ss[0] + ps[0]):.2f}x")
    print(f"of the audit: interpreter {floor[0] * 1000:.1f} ms, imports "
          f"{(imports[0] - floor[0]) * 1000:.1f} ms, snapshot + checks {inside_ms:.1f} ms, rest "
          f"{(audit[0] - imports[0]) * 1000 - inside_ms:.1f} ms (policy, reports, exit; the fd "
          "walk overlaps the imports, so the parts are approximate)")
    for pid in pids:  # PID 1 of the namespace exiting would kill them too; be explicit
        os.kill(pid, 9)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if audit[2] in (0, 1, 3) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=2000)
    parser.add_argument("--sockets", type=int, default=20000)
    parser.add_argument("--listeners", type=int, default=400)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inner(args)
    if os.geteuid() != 0:
        print("audit_bench: needs root to create namespaces", file=sys.stderr)
        return 2
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--net", "--mount",
            sys.executable, __file__, "--inner", "--procs", str(args.procs), "--sockets",
            str(args.sockets), "--listeners", str(args.listeners), "--runs", str(args.runs)]
    return subprocess.run(argv, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

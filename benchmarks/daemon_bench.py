"""Cost of the daemon: CPU seconds per audit cycle and RSS over many cycles (no growth).

Runs ``hostguard daemon`` as a real process at a short interval with every output on (JSON and
SARIF reports with ``keep``, history, metrics) and reads its CPU time and RSS from ``/proc``:
after a warm-up of ``--warmup`` cycles and again after ``--cycles``. The CPU per cycle, divided by
30 s, is the share of one core the daemon would take at a 30 s interval (target: under 1%). The
history's size divided by the runs it holds is what retention costs per run.
Nothing is asserted: the figures are for reading.

    python benchmarks/daemon_bench.py [--cycles 200] [--interval 0.05] [--root /] \\
        [--policy policies] [--label role=gateway] [--no-placement]

``--no-placement`` is passed on to the daemon (for its test on a busy machine, where an idle-class
daemon would wait for the CPU); the figures are the same, the wall time is not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``, and of its children it reaped (the fd-walk helpers on a host
    with hundreds of processes: agent/host/fdwalk.py)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--root", default="/")
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-placement", dest="place", action="store_false")
    args = parser.parse_args()
    if args.cycles <= args.warmup or args.warmup < 1:
        parser.error("--cycles must exceed --warmup, which must be at least 1")
    return args


class Run:
    """The daemon process and what its log says."""

    def __init__(self, args: argparse.Namespace, config: Path) -> None:
        self.args = args
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "daemon", "--config", str(config),
             *([] if args.place else ["--no-placement"])], cwd=PROJECT,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.done = 0
        self.marks: dict[int, tuple[float, float, float]] = {}
        self.checks = "?"
        self.errors: list[str] = []
        self.finished = threading.Event()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("event=loaded "):
                self.checks = line.split("checks=", 1)[1].split()[0]
            elif line.startswith("event=audit-done "):
                self.done += 1
                if self.done in (self.args.warmup, self.args.cycles):
                    pid = self.proc.pid
                    self.marks[self.done] = (cpu_seconds(pid), rss_mib(pid), time.monotonic())
                if self.done >= self.args.cycles:
                    self.finished.set()
            elif "level=error" in line:
                self.errors.append(line.strip())
        self.finished.set()

    def stop(self) -> int:
        self.finished.wait(timeout=3600)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.reader.join(5)
        return code


def main() -> int:
    args = parse_args()
    policies = [str(Path(p).resolve()) for p in (args.policy or [str(PROJECT / "policies")])]
    with tempfile.TemporaryDirectory(prefix="daemon-bench-") as tmp:
        config = Path(tmp) / "hostguard.yaml"
        config.write_text(json.dumps({
            "apiVersion": "hostguard/v1", "kind": "AgentConfig", "policies": policies,
            "interval": args.interval, "root": str(Path(args.root).resolve()),
            "output_dir": "reports", "reports": ["json", "sarif"], "keep": 5,
            "history": "history.db", "metrics": "hostguard.prom",
            "labels": dict(label.split("=", 1) for label in args.label)}))
        run = Run(args, config)
        code = run.stop()
        stored = sum(f.stat().st_size for f in Path(tmp).glob("history.db*"))
    if args.cycles not in run.marks or args.warmup not in run.marks:
        print(f"daemon_bench: the daemon stopped after {run.done} cycles (exit {code})",
              file=sys.stderr)
        for line in run.errors[:10]:
            print(line, file=sys.stderr)
        return 1
    cpu0, rss0, t0 = run.marks[args.warmup]
    cpu1, rss1, t1 = run.marks[args.cycles]
    cycles = args.cycles - args.warmup
    per_cycle = (cpu1 - cpu0) / cycles
    print(f"daemon_bench: {args.cycles} cycles at a {args.interval} s interval, root {args.root}, "
          f"{run.checks} checks, reports json+sarif, history, metrics")
    print(f"cpu:    {per_cycle * 1000:.1f} ms per cycle (user+system, cycles {args.warmup}.."
          f"{args.cycles}; wall {(t1 - t0) / cycles * 1000:.1f} ms per cycle)")
    print(f"        {per_cycle / 30 * 100:.3f}% of one core at a 30 s interval (target < 1%)")
    print(f"rss:    {rss0:.1f} MiB after cycle {args.warmup}, {rss1:.1f} MiB after cycle "
          f"{args.cycles} (growth {rss1 - rss0:+.1f} MiB)")
    print(f"history: {stored / run.done / 1024:.1f} KiB per run stored ({stored / 1024:.0f} KiB "
          f"for {run.done} runs, SQLite file and its journal)")
    if run.errors:
        print(f"note:   {len(run.errors)} error event(s), first: {run.errors[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

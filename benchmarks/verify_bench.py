"""Cost of the daemon's history verification against the audit it follows.

Run from the project root::

    python benchmarks/verify_bench.py [--runs 2000] [--root /] [--policy policies] [--repeat 3]

Audits ``--root`` once with ``--policy`` (as ``hostguard audit`` does), records that run
``--runs`` times into a fresh history (each with its own start time), then measures the CPU time,
``--repeat`` times each, of: the audit, recording one more run, and ``History.verify()`` over the
whole chain. It prints the medians and the ratio of a verification to an audit, which is what
the daemon adds to a cycle when it verifies (after the first run, after a reload, then every
``VERIFY_PERIOD`` in agent/daemon/service.py): the ratio grows with the history, so a daemon
verifies hourly, not every cycle. Nothing is asserted: the exit status is non-zero only when a
step failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from agent import audit  # noqa: E402 - after the path set-up above
from agent.audit_policies import load_for_audit  # noqa: E402
from agent.daemon.history import History  # noqa: E402
from agent.daemon.service import VERIFY_PERIOD  # noqa: E402
from agent.result import AuditRun  # noqa: E402


def median_seconds(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()  # CPU, what the daemon's budget counts
        step()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--root", type=Path, default=Path("/"))
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.runs < 1 or args.repeat < 1:
        parser.error("--runs and --repeat must be at least 1")
    today = dt.date.today()
    loaded = load_for_audit(args.policy or [str(PROJECT / "policies")], today)
    if loaded.refused:
        reason = [*loaded.usage, *map(str, loaded.errors), "no check"][0]
        print(f"verify_bench: the policies cannot be audited: {reason}", file=sys.stderr)
        return 1
    run = audit.run(loaded.policy_set, args.root, today=today)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def dated(i: int) -> AuditRun:
        moment = start + dt.timedelta(minutes=5 * i)
        return dataclasses.replace(run, started=moment.strftime("%Y-%m-%dT%H:%M:%SZ"))

    with tempfile.TemporaryDirectory() as folder, History(Path(folder) / "h.db") as history:
        for i in range(args.runs):
            history.record(dated(i))
        size = (Path(folder) / "h.db").stat().st_size
        audit_s = median_seconds(lambda: audit.run(loaded.policy_set, args.root, today=today),
                                 args.repeat)
        count = iter(range(args.runs, args.runs + args.repeat))
        record_s = median_seconds(lambda: history.record(dated(next(count))), args.repeat)
        problems = history.verify()
        verify_s = median_seconds(history.verify, args.repeat)
    if problems:
        print(f"verify_bench: the history does not verify: {problems[0]}", file=sys.stderr)
        return 1
    print(f"verify_bench: {len(run.results)} checks, root {args.root}, history of {args.runs} "
          f"runs ({size / 2**20:.1f} MiB)")
    print(f"audit:  {audit_s * 1000:.1f} ms CPU")
    print(f"record: {record_s * 1000:.1f} ms ({record_s / audit_s:.2f} audits)")
    print(f"verify: {verify_s * 1000:.1f} ms ({verify_s / audit_s:.2f} audits, "
          f"{verify_s / args.runs * 1e6:.0f} us per stored run)")
    print(f"        once per {VERIFY_PERIOD:.0f} s: {verify_s / VERIFY_PERIOD * 100:.3f}% of one "
          "core")
    return 0


if __name__ == "__main__":
    sys.exit(main())

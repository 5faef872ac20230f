"""``hostguard daemon``: scheduled audits as a service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.daemon import service
from agent.daemon.config import DEFAULT_PATH


def add_parsers(sub: Any) -> None:
    """Register ``daemon`` on the top-level subparsers ``sub``."""
    parser = sub.add_parser(
        "daemon", help="run scheduled audits as a service (systemd Type=notify)",
        description="Audit every `interval` seconds with the policies of the configuration, "
        "write reports, history and metrics, and talk sd_notify to systemd. SIGHUP reloads, "
        "SIGTERM stops. Exit 0 after a stop, 2 invalid configuration or policies at start; "
        "with --once the audit's exit status (0, 1, 3), or 4 when outputs could not be written.")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH,
                        help=f"configuration file (default {DEFAULT_PATH})")
    parser.add_argument("--once", action="store_true",
                        help="run one audit with every output, then exit")
    parser.add_argument("--no-placement", dest="place", action="store_false",
                        help="for tests and debugging: keep the CPUs and priorities it was "
                        "started with (no housekeeping CPUs, SCHED_IDLE, nice 19, idle I/O)")
    parser.set_defaults(handler=_daemon)


def _daemon(args: argparse.Namespace) -> int:
    return service.main(args.config, args.once, args.place)

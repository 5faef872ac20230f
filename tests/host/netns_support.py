"""Network namespaces for the socket tests: a listener helper in a fresh netns, and ``ss``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support import PROJECT, need_root, need_tool

HELPER = Path(__file__).resolve().parent / "listen_helper.py"
_USERS = re.compile(r"pid=([0-9]+)")

SsRow = tuple[str, str, int, bool, str, frozenset[int]]
"""(proto, address, port, dual-stack, bound device, pids) as ``ss -H -tulpn`` shows them."""


@dataclass(frozen=True)
class Namespace:
    """A helper process holding the listen_helper sockets in a fresh network namespace."""

    pid: int
    child: int
    netns: int


def parse_ss(text: str) -> set[SsRow]:
    """Rows of ``ss -H -tulpn``; ``*:port`` is a dual-stack ``[::]`` socket."""
    rows: set[SsRow] = set()
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        proto, local = fields[0], fields[4]
        host, _, port = local.rpartition(":")
        host, _, device = host.partition("%")
        dual = host == "*"
        if dual:
            host = "::"
        host = host.removeprefix("[").removesuffix("]")
        pids = frozenset(int(p) for p in _USERS.findall(" ".join(fields[6:])))
        rows.add((proto, host, int(port), dual, device, pids))
    return rows


def ss_in(pid: int) -> set[SsRow]:
    """What ``ss -H -tulpn`` reports inside the network namespace of ``pid``."""
    ss = need_tool("ss")
    nsenter = need_tool("nsenter")
    done = subprocess.run([nsenter, f"--net=/proc/{pid}/ns/net", ss, "-H", "-tulpn"],
                          capture_output=True, text=True, check=True, timeout=30)
    return parse_ss(done.stdout)


@contextmanager
def helper_namespace() -> Iterator[Namespace]:
    """Start listen_helper.py under ``unshare --net``; kill it (and its child) afterwards."""
    need_root()
    unshare = need_tool("unshare")
    need_tool("ip")
    proc = subprocess.Popen([unshare, "--net", sys.executable, str(HELPER), "serve"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=PROJECT, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the helper prints once every socket is open
        assert line, f"helper exited with {proc.wait(10)}"
        info = json.loads(line)
        assert info["pid"] == proc.pid  # unshare without --fork execs the helper in place
        yield Namespace(proc.pid, info["child"], os.stat(f"/proc/{proc.pid}/ns/net").st_ino)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def run_in_fresh_namespaces(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ARGV beside the helper's sockets in a fresh net + pid namespace with its own /proc.

    Every process the command can see is then one the test started, so the owner table is
    complete (on this VM, PID 1 of the real pid namespace is unreadable even to root).
    """
    need_root()
    unshare = need_tool("unshare")
    need_tool("ip")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([unshare, "--net", "--pid", "--fork", "--mount-proc", sys.executable,
                           str(HELPER), "run", "--", *argv], capture_output=True, text=True,
                          cwd=PROJECT, env=env, timeout=timeout, check=False)


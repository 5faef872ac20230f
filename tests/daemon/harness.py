"""Run ``hostguard daemon`` as a real subprocess with a notify socket bound by the test."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.support import PROJECT

KPTR_PASS = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1)
"""Passes on the fixture host (kptr_restrict is 2)."""
KPTR_FAIL = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 3)
"""The same check id, failing there."""
SWAPPINESS = sysctl("LAT-002", "vm.swappiness", "le", 10)
"""Passes on the fixture host (swappiness is 1)."""
STATUS_LINE = re.compile(
    r"STATUS=(?:re)?loaded \d+ checks? from \d+ policy files?; "
    r"last audit \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: (?P<counts>.*)")


def write_config(folder: Path, **extra: Any) -> Path:
    """A configuration with one passing policy in ``folder/policies`` (JSON is YAML)."""
    write(folder / "policies" / "base.yaml", policy("base", [KPTR_PASS]))
    doc: dict[str, Any] = {"apiVersion": "hostguard/v1", "kind": "AgentConfig",
                           "policies": ["policies"], "interval": 1,
                           "root": str(TRADING_ROOT), **extra}
    return write(folder / "hostguard.yaml", doc)


class Listener:
    """A datagram socket standing in for systemd's notify socket; records every message."""

    def __init__(self, folder: Path, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"hostguard-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = folder / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self, watchdog: bool = False) -> list[str]:
        return [m for _, m in self.messages if watchdog or m != "WATCHDOG=1"]

    def close(self) -> None:
        self.closed.set()
        self.thread.join(2)
        self.sock.close()


class Daemon:
    """``python -m agent daemon`` with stderr collected line by line (with arrival times).

    It runs ``--no-placement`` unless ``place``: an idle-class daemon gets no CPU while anything
    else runs, and the tests of timing and signals would measure the machine's load.
    """

    def __init__(self, config: Path, listener: Listener | None,
                 env: Mapping[str, str] | None = None, args: Sequence[str] = (),
                 place: bool = False) -> None:
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        environ["PYTHONPATH"] = str(PROJECT)
        if listener is not None:
            environ["NOTIFY_SOCKET"] = listener.env_value
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "daemon", "--config", str(config),
             *([] if place else ["--no-placement"]), *args],
            cwd=PROJECT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for text in self.proc.stderr:
            self.lines.append((time.monotonic(), text.rstrip("\n")))

    def events(self, name: str) -> list[dict[str, str]]:
        """Parsed ``event=name`` lines."""
        return [parse(t) for _, t in self.lines if t.startswith(f"event={name} ")]

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 5) -> tuple[int, float]:
        """Send ``signum``; the exit status and how long the exit took."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout)
        elapsed = time.monotonic() - start
        self.reader.join(2)
        return code, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(2)


def parse(line: str) -> dict[str, str]:
    """``event=x key=value key="json string"`` -> dict."""
    out: dict[str, str] = {}
    for match in re.finditer(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        raw = match.group(2)
        out[match.group(1)] = json.loads(raw) if raw.startswith('"') else raw
    return out


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)

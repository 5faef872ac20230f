"""sd_notify over a datagram socket the test binds: path and abstract names, watchdog settings."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from agent.daemon.notify import notify, socket_address, status_text, watchdog_interval


def test_notify_to_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        assert notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": str(path)}) is True
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_notify_to_an_abstract_socket() -> None:
    name = f"hostguard-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)  # '@name' on the wire is NUL + name
        sock.settimeout(2)
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_notify_outside_systemd_is_a_no_op(tmp_path: Path) -> None:
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": ""}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}) is False


def test_socket_address() -> None:
    assert socket_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert socket_address({"NOTIFY_SOCKET": "@abc"}) == "\0abc"
    assert socket_address({}) is None


def test_watchdog_interval() -> None:
    me = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": me}) == 0.5
    assert watchdog_interval({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "-5"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_status_text_is_one_bounded_line() -> None:
    assert status_text("reload failed:\nREADY=1\tnow") == "reload failed: READY=1 now"
    long = status_text("x" * 1000)
    assert len(long) == 480 and long.endswith("...")

"""sd_notify(3) over ``$NOTIFY_SOCKET``: one datagram of ``KEY=VALUE`` lines per call.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op returning False, so the daemon runs
the same either way. A socket name starting with ``@`` lives in the abstract namespace (its first
byte is NUL on the wire).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def socket_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The address to send to, or None when not run by a service manager that listens."""
    env = os.environ if environ is None else environ
    name = env.get("NOTIFY_SOCKET", "")
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None  # unset, or a transport we do not speak (vsock:)


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STATUS=...`` ...); True when the datagram was sent."""
    address = socket_address(environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8", "backslashreplace"))
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds of ``WATCHDOG_USEC`` when the watchdog is meant for this process, else None.

    ``WATCHDOG_PID``, when set, names the process the watchdog is for; another pid (a child that
    inherited the environment) must not pet it.
    """
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


def status_text(text: str, limit: int = 480) -> str:
    """A ``STATUS=`` value: one line (newlines would start new keys), bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

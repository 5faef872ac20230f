"""Test helper: opens a known set of sockets inside the network namespace it runs in.

Started by the tests under ``unshare --net`` (a fresh namespace with only ``lo``)::

    listen_helper.py serve          # print {"pid", "child"} as one JSON line, hold until stdin EOF
    listen_helper.py run -- ARGV    # open the sockets, run ARGV, relay its output and exit code

The sockets (fixed ports: the namespace is fresh, nothing else can hold them):

| port | proto | bind | notes |
|---|---|---|---|
| 7001 | tcp | 0.0.0.0 | |
| 7002 | tcp | [::] | IPV6_V6ONLY=1 |
| 7003 | tcp | [::] | IPV6_V6ONLY=0: dual-stack |
| 7004 | udp | 0.0.0.0 | |
| 7005 | udp | [::] | v6only |
| 7006 | tcp | 0.0.0.0 | opened by the child after setuid(nobody) |
| 7007 | tcp | 0.0.0.0 | opened before the fork: held by parent and child |
| 7009 | udp | [::] | dual-stack |
| 7010 | tcp | [::ffff:127.0.0.1] | IPv4-mapped bind |
| 7011 | tcp | 0.0.0.0 | SO_BINDTODEVICE lo |
| 9100 | tcp | 127.0.0.1 | |
| 9101 | tcp | [::1] | |

and sockets that are *not* listeners: TCP 127.0.0.1:7008 bound but not listening, a UDP socket
connected to 127.0.0.1:7004.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

NOBODY = 65534

LISTENING = {  # (proto, address, port) -> dual-stack?
    ("tcp", "0.0.0.0", 7001): False, ("tcp", "::", 7002): False, ("tcp", "::", 7003): True,
    ("udp", "0.0.0.0", 7004): False, ("udp", "::", 7005): False, ("tcp", "0.0.0.0", 7006): False,
    ("tcp", "0.0.0.0", 7007): False, ("udp", "::", 7009): True,
    ("tcp", "::ffff:127.0.0.1", 7010): False, ("tcp", "0.0.0.0", 7011): False,
    ("tcp", "127.0.0.1", 9100): False, ("tcp", "::1", 9101): False,
}


def _open(proto: str, address: str, port: int, v6only: bool | None = None) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    sock.bind((address, port))
    if proto == "tcp":
        sock.listen(8)
    return sock


def open_all() -> tuple[list[socket.socket], int]:
    """Open every socket; returns them and the child's pid."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    held = [_open("tcp", "0.0.0.0", 7007)]  # before the fork: shared with the child
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            mine = _open("tcp", "0.0.0.0", 7006)
            os.write(ready_w, b"k")
            while mine:
                signal.pause()
        finally:
            os._exit(1)
    os.close(ready_w)
    if os.read(ready_r, 1) != b"k":
        raise SystemExit("child failed to open its socket")
    os.close(ready_r)
    held += [
        _open("tcp", "0.0.0.0", 7001), _open("tcp", "::", 7002, True),
        _open("tcp", "::", 7003, False), _open("udp", "0.0.0.0", 7004),
        _open("udp", "::", 7005, True), _open("udp", "::", 7009, False),
        _open("tcp", "::ffff:127.0.0.1", 7010, False),
        _open("tcp", "127.0.0.1", 9100), _open("tcp", "::1", 9101),
    ]
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
    bound.bind(("0.0.0.0", 7011))
    bound.listen(8)
    idle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    idle.bind(("127.0.0.1", 7008))  # bound, never listens: not a listener
    connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    connected.connect(("127.0.0.1", 7004))  # connected UDP: not a listener
    held += [bound, idle, connected]
    return held, child


def main(argv: list[str]) -> int:
    held, child = open_all()
    try:
        if argv[:1] == ["serve"]:
            print(json.dumps({"pid": os.getpid(), "child": child}), flush=True)
            sys.stdin.read()  # hold until the test closes our stdin
            return 0
        if argv[:2] == ["run", "--"]:
            done = subprocess.run(argv[2:], capture_output=True, text=True, check=False)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            return done.returncode
        raise SystemExit(f"usage: {sys.argv[0]} serve | run -- ARGV")
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        for sock in held:
            sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

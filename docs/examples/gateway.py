"""A tiny order gateway, the worked example of docs/seccomp.md ("The whole path, worked").

    python3 gateway.py serve --journal FILE --port-file FILE   # until SIGTERM
    python3 gateway.py order --port-file FILE ORDER...         # a client: one line per order
    python3 gateway.py selftest --journal FILE                 # serve one client, then exit

It listens on 127.0.0.1 (a free port, written to --port-file once it listens), answers each
order line with ``ACK n`` and appends it to the journal (written and fsync'ed before the
answer). SIGHUP rotates the journal (renamed to FILE.1, a new one opened): the path a
recording of ``selftest`` does not take.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import sys
import threading


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open, rotated
        self.rotate_asked = False

    def write(self, line: str) -> None:
        if self.rotate_asked:
            self.rotate_asked = False
            self.file.close()
            os.replace(self.path, self.path + ".1")
            self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self.file.write(line + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())


def serve(listener: socket.socket, journal: Journal, clients: int | None = None) -> None:
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    served = acked = 0
    while clients is None or served < clients:
        for key, _ in events.select():
            if key.fileobj is listener:
                connection, _ = listener.accept()
                events.register(connection, selectors.EVENT_READ, connection.makefile("rw"))
                continue
            stream = key.data
            line = stream.readline()
            if not line:
                events.unregister(key.fileobj)
                stream.close()
                key.fileobj.close()
                served += 1
                continue
            acked += 1
            journal.write(f"{acked} {line.strip()}")
            stream.write(f"ACK {acked}\n")
            stream.flush()


def listen() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def order(port: int, lines: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        stream = connection.makefile("rw")
        for line in lines:
            stream.write(line + "\n")
            stream.flush()
            print(stream.readline().strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "order", "selftest"])
    parser.add_argument("orders", nargs="*")
    parser.add_argument("--journal")
    parser.add_argument("--port-file")
    args = parser.parse_intermixed_args()
    if args.command == "order":
        with open(args.port_file, encoding="ascii") as handle:
            order(int(handle.read()), args.orders)
        return 0
    journal = Journal(args.journal)
    listener = listen()
    if args.command == "selftest":
        client = threading.Thread(target=order, args=(listener.getsockname()[1],
                                                      ["BUY 100 XYZ", "SELL 50 XYZ"]))
        client.start()
        serve(listener, journal, clients=1)
        client.join()
        return 0
    signal.signal(signal.SIGHUP, lambda *_: setattr(journal, "rotate_asked", True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.port_file + ".tmp", "w", encoding="ascii") as handle:
        handle.write(str(listener.getsockname()[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    serve(listener, journal)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A process whose seccomp filters the dump tests read: ``python seccomp_target.py``.

It reads one command per line on stdin and answers one line on stdout (the main thread sleeps in
``read`` in between, as a real server sleeps in ``epoll_wait``):

``load HEX [tsync]``  load the raw BPF program HEX with ``seccomp(2)`` (flag TSYNC when asked;
                      without it only the main thread gets it) -> ``ok N`` (``Seccomp_filters``)
``thread``            start a thread that sleeps in a loop -> ``tid N``
``ping``              -> ``pong`` (proves the main thread runs)
``block FIFO``        ``posix_spawn`` ``/bin/true`` with the file action "open FIFO": the main
                      thread waits for the ``vfork``-style child in a killable sleep (state D,
                      no ordinary signal wakes it) until someone opens FIFO for writing ->
                      ``blocking`` before, ``unblocked`` after
``signals N``         send itself SIGUSR1 N times, each handled (counted) before the next ->
                      ``signals N HANDLED`` (HANDLED < N means a signal was lost)
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
SYS_SECCOMP = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(program: bytes, tsync: bool) -> int:
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    flags = SECCOMP_FILTER_FLAG_TSYNC if tsync else 0
    if LIBC.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp")
    with open("/proc/thread-self/status") as status:
        for line in status:
            if line.startswith("Seccomp_filters:"):
                return int(line.split()[1])
    return -1


def start_thread() -> int:
    """A thread that sleeps in a loop; its tid."""
    tids: list[int] = []
    started = threading.Event()

    def run() -> None:
        tids.append(threading.get_native_id())
        started.set()
        while True:
            time.sleep(0.01)

    threading.Thread(target=run, daemon=True).start()
    started.wait()
    return tids[0]


def main() -> None:
    handled = [0]

    def on_usr1(signum: int, frame: object) -> None:
        handled[0] += 1

    signal.signal(signal.SIGUSR1, on_usr1)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        answer = "?"
        if words[0] == "load":
            answer = f"ok {load(bytes.fromhex(words[1]), 'tsync' in words[2:])}"
        elif words[0] == "thread":
            answer = f"tid {start_thread()}"
        elif words[0] == "ping":
            answer = "pong"
        elif words[0] == "block":
            print("blocking", flush=True)
            pid = os.posix_spawn("/bin/true", ["true"], {}, file_actions=[
                (os.POSIX_SPAWN_OPEN, 3, words[1], os.O_RDONLY, 0)])
            os.waitpid(pid, 0)
            answer = "unblocked"
        elif words[0] == "signals":
            count = int(words[1])
            me = threading.get_ident()
            handled[0] = 0
            for _ in range(count):
                signal.pthread_kill(me, signal.SIGUSR1)  # handled on return (CheckSignals)
            answer = f"signals {count} {handled[0]}"
        elif words[0] == "exit":
            return
        print(answer, flush=True)


if __name__ == "__main__":
    main()

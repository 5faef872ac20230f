"""Live child processes for the tests that audit this host (import as ``from tests.live import``).

A child is *marked*: its ``argv[0]`` (``sleeper``) or first argument (``threaded``) is a string
unique to the test run, so a check can select it by command line and nothing else on the host
matches. ``LiveChildren`` starts them, waits until ``/proc`` shows each one running its marked
command (or until it reports ready on stdout), and kills and reaps every one on exit.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

THREADED = """
import os, sys, threading, time
import pyseccomp as seccomp
pin = sys.argv[2:]  # optional: the main thread's CPU, then the worker's
if pin:
    os.sched_setaffinity(0, {int(pin[0])})
ready = threading.Event()
tids = []
def worker():
    if pin:
        os.sched_setaffinity(0, {int(pin[1])})  # this thread alone moves
    tids.append(threading.get_native_id())
    ready.set()
    time.sleep(120)
threading.Thread(target=worker, daemon=True).start()
ready.wait()
seccomp.SyscallFilter(seccomp.ALLOW).load()  # no TSYNC: only the main thread is filtered
print(tids[0], flush=True)
time.sleep(120)
"""
"""A Python child with a worker thread created before the main thread loads an allow-all filter
without TSYNC (so the worker has none); it prints the worker's tid once the filter is loaded."""


def sleeper(marker: str) -> list[str]:
    """argv of a ``sleep 120`` whose argv[0] is ``marker`` (prefix it with taskset, chrt, ...)."""
    return ["bash", "-c", 'exec -a "$0" sleep 120', marker]


def threaded(marker: str, cpus: tuple[int, int] | None = None) -> list[str]:
    """argv of the THREADED child; ``cpus`` pins the main thread to the first, the worker to the
    second."""
    return [sys.executable, "-c", THREADED, marker, *(str(cpu) for cpu in cpus or ())]


class LiveChildren:
    """The children one fixture started; everything waited for shares one deadline."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.started: list[subprocess.Popen[str]] = []

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              reports: bool = False) -> subprocess.Popen[str]:
        """Start ``argv`` (stdin closed; with ``reports`` its stdout is a pipe to read)."""
        child = subprocess.Popen(argv, env=env, text=True, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE if reports else None)
        self.started.append(child)
        return child

    def running(self, child: subprocess.Popen[str], marker: str) -> int:
        """Wait until ``child`` has exec'd into the command whose argv[0] is ``marker``; its pid."""
        while time.monotonic() < self.deadline:
            if child.poll() is not None:
                raise AssertionError(f"child {child.pid} exited ({child.returncode}) before it "
                                     f"ran {marker}")
            try:
                argv = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                argv = []
            if argv and argv[0] == marker.encode():
                return child.pid
            time.sleep(0.005)
        raise AssertionError(f"child {child.pid} never exec'd into {marker}")

    def ready_line(self, child: subprocess.Popen[str]) -> str:
        """The first line ``child`` (started with ``reports``) writes."""
        assert child.stdout is not None
        left = max(0.0, self.deadline - time.monotonic())
        ready, _, _ = select.select([child.stdout], [], [], left)
        assert ready, f"child {child.pid} did not report ready"
        return child.stdout.readline()

    def stop(self) -> None:
        for child in self.started:
            child.kill()
        for child in self.started:
            child.wait(timeout=10)


@contextmanager
def live_children(seconds: float) -> Iterator[LiveChildren]:
    """``LiveChildren`` whose every child is killed and reaped when the block ends."""
    children = LiveChildren(seconds)
    try:
        yield children
    finally:
        children.stop()

"""The daemon's sleep: cut short by any handled signal, with no lock taken in a handler."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from agent.daemon.wakeup import Wakeup


@pytest.fixture
def usr1() -> Iterator[list[int]]:
    """A SIGUSR1 handler that only counts, as the daemon's only set flags."""
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_before_the_sleep_is_not_lost(usr1: list[int]) -> None:
    with Wakeup() as wakeup:
        os.kill(os.getpid(), signal.SIGUSR1)  # its handler has run once this returns
        assert usr1 == [signal.SIGUSR1]
        start = time.monotonic()
        assert wakeup.wait(5) is True
        assert time.monotonic() - start < 1
        assert wakeup.wait(0) is False  # drained: the next sleep is a full one


def test_a_signal_during_the_sleep_ends_it(usr1: list[int]) -> None:
    main = threading.get_ident()
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
    with Wakeup() as wakeup:
        start = time.monotonic()
        timer.start()
        assert wakeup.wait(10) is True
        assert 0.1 < time.monotonic() - start < 5
    assert usr1 == [signal.SIGUSR1]


def test_the_previous_wakeup_fd_comes_back() -> None:
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    with Wakeup():
        pass
    assert signal.set_wakeup_fd(before) == before

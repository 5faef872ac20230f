"""A threaded Python program that keeps working while hostguard applies a filter to it.

``python apply_target.py DIR``: worker threads loop, each trying ``mkdir(DIR/w<N>)`` (removed
again when it works) and keeping the last errno; one more thread blocks in a lock (futex).
The main thread reads one command per line on stdin (blocked in ``read`` in between) and
answers one line:

``status``   -> ``status I0 E0 I1 E1`` (iterations and last errno of each worker)
``new``      -> ``new E`` (a thread started now tries mkdir once; 0 when it worked)
``signals``  -> ``signals N`` (SIGUSR1 handled so far)
``release``  -> ``released`` once the lock waiter has returned
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

WORKERS = 2
directory = sys.argv[1]
iterations = [0] * WORKERS
errors = [0] * WORKERS
handled: list[int] = []
signal.signal(signal.SIGUSR1, lambda *_: handled.append(1))
gate = threading.Lock()
gate.acquire()
waited = threading.Event()


def try_mkdir(name: str) -> int:
    path = os.path.join(directory, name)
    try:
        os.mkdir(path)
    except OSError as exc:
        return exc.errno or -1
    os.rmdir(path)
    return 0


def work(index: int) -> None:
    while True:
        errors[index] = try_mkdir(f"w{index}")
        iterations[index] += 1
        time.sleep(0.002)


def wait_gate() -> None:
    with gate:
        waited.set()


for index in range(WORKERS):
    threading.Thread(target=work, args=(index,), daemon=True).start()
threading.Thread(target=wait_gate, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "status":
        print("status", *(f"{i} {e}" for i, e in zip(iterations, errors, strict=True)),
              flush=True)
    elif command == "new":
        result: list[int] = []
        thread = threading.Thread(target=lambda out=result: out.append(try_mkdir("new")))
        thread.start()
        thread.join()
        print("new", result[0], flush=True)
    elif command == "signals":
        print("signals", len(handled), flush=True)
    elif command == "release":
        gate.release()
        waited.wait()
        print("released", flush=True)

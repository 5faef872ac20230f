"""agent/seccomp/assemble.py: libseccomp in a spawned child, bounded in time, never forked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agent.core.location import Location
from agent.seccomp import assemble, libseccomp
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, KILL_PROCESS, Action, ActionKind
from agent.seccomp.plan import CompileError, Emitted
from tests.seccomp.kernel import RUNTIME
from tests.seccomp.rules import arg, prof, rule
from tests.support import PROJECT

E20 = Action(ActionKind.ERRNO, 20)


def test_binary_tree_only_above_a_handful_of_syscalls() -> None:
    few = build_filter(prof(EPERM, (rule("getppid getuid"),)))
    assert few.attributes == {"badarch": 0x80000000, "nnp": 1, "tsync": 1, "sysrawrc": 1,
                              "optimize": 1}
    assert "if ($syscall >" not in few.pfc()
    many = build_filter(prof(EPERM, (rule(" ".join(RUNTIME)),), no_new_privs=False))
    assert many.attributes["optimize"] == 2 and many.attributes["nnp"] == 0
    assert "if ($syscall >" in many.pfc()  # the binary search over syscall numbers


def test_libseccomp_looping_forever_is_bounded() -> None:
    profile = prof(Action(ActionKind.ERRNO, 22),
                   (rule("getppid", E20, arg(1, "gt", 7)), rule("getppid", ALLOW, arg(1, "gt", 6)),
                    rule("getppid")),
                   (rule("getppid", Action(ActionKind.ERRNO, 21), arg(0, "gt", 1)),),
                   location=Location("loop.yaml", 1, 1))
    with pytest.raises(CompileError) as raised:
        build_filter(profile)
    assert str(raised.value).startswith("loop.yaml:1:1: libseccomp did not finish building the "
                                        "filter in 2s")


# --- a spawned child, never a fork --------------------------------------------------------------

NO_FORK = """
import os, sys, threading
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, Profile, Rule
forks = []
os.register_at_fork(before=lambda: forks.append("at-fork hook"))
def refuse() -> int:
    forks.append("os.fork")
    raise OSError("fork refused: the caller has threads")
os.fork = refuse
stop = threading.Event()
watchdog = threading.Thread(target=stop.wait, daemon=True)  # as the daemon's watchdog
watchdog.start()
compiled = build_filter(Profile("t", EPERM, (Rule(("getppid", "getuid"), ALLOW),)))
threads = threading.active_count()
stop.set()
print(threads, forks, len(compiled.bpf()) > 0)
"""


def test_assembly_spawns_a_child_while_the_caller_has_threads() -> None:
    # Any fork from Python (os.fork, multiprocessing's fork) runs the at-fork hooks; a spawned
    # interpreter does not. So a fork in the assembly would show in ``forks``, or fail.
    done = subprocess.run([sys.executable, "-c", NO_FORK], capture_output=True, text=True,
                          timeout=120, check=False, cwd=PROJECT,
                          env={"PYTHONPATH": str(PROJECT), "PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2 [] True\n"


def test_the_child_imports_no_more_than_libseccomp_needs() -> None:
    boot = assemble._BOOT.replace("sys.exit(main())", "main(); import json; "
                                  "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    request = {"default": 0x7FFF0000, "badarch": 0x80000000, "nnp": 1, "filters": [
        {"token": None, "optimize": 1, "rules": []}]}
    paths = [assemble._ROOT, *sys.path]
    done = subprocess.run([sys.executable, "-I", "-S", "-c", boot, *paths],
                          input=json.dumps(request).encode(), capture_output=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stderr)
    assert [m for m in loaded if m.startswith("agent")] == [
        "agent", "agent.seccomp", "agent.seccomp.libseccomp"]
    assert json.loads(done.stdout[1:])["attributes"]["badarch"] == 0x80000000


# --- what the child reports, as the parent raises it --------------------------------------------

def test_a_rule_libseccomp_refuses_is_a_located_error() -> None:
    profile = prof(EPERM, (rule("getppid", line=4),))
    # the plan never gives libseccomp a rule with the default action; libseccomp refuses one
    with pytest.raises(CompileError) as raised:
        assemble.assemble(profile, ("x86_64",), (Emitted("getppid", EPERM, ()),),
                          tree=None, numbers={("getppid", "x86_64"): 110}, order="planned",
                          default=EPERM, badarch=KILL_PROCESS)
    assert str(raised.value) == ("p.yaml:4:5: libseccomp refused the rule errno(1) for getppid "
                                 "on x86_64 (no conditions): Permission denied")


def test_a_failing_child_is_an_error_not_a_hang() -> None:
    assert assemble._run({"default": 0, "badarch": 0, "nnp": 1}) == {"failed": "'filters'"}
    assert libseccomp.build({"default": 0x7FFF0000, "badarch": 0x12345678, "nnp": 1,
                             "filters": [{"token": None, "optimize": 1, "rules": []}]}) == {
        "attribute": "badarch", "value": 0x12345678, "strerror": "Invalid argument"}


def test_a_child_that_cannot_start_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = prof(EPERM, (rule("getppid"),))
    monkeypatch.setattr(assemble, "_BOOT", "raise SystemExit('no libseccomp here')")
    with pytest.raises(CompileError, match=r"^cannot start the libseccomp helper: no libseccomp "
                                           r"here$"):
        build_filter(profile)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(CompileError, match=r"^cannot start the libseccomp helper: \[Errno 2\]"):
        build_filter(profile)

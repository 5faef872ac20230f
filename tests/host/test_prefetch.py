"""agent.host.prefetch: the fd walk started before the policies are loaded, taken over or cancelled.

The guess only decides when the walk starts: an audit with a prefetched walk must say exactly
what one without says.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent import audit, cli
from agent.audit_policies import load_for_audit
from agent.host import fdwalk, prefetch
from tests.authoring import check, policy, write
from tests.host.test_sockets import gateway_host
from tests.support import PROJECT, need_root, need_tool

PORTS = check("NET-1", "ports", {"allow": [{"port": 22, "proto": "tcp"}]})
PROCESS = check("PROC-1", "process", {"name": "telnetd", "forbidden": True},
                title="no telnetd: not a ports check")


@pytest.mark.parametrize("text", [
    "checks:\n  - id: A\n    kind: ports\n",
    "checks: [{id: A, kind: ports, spec: {}}]\n",
    "checks:\n  - kind: 'ports'\n",
    '{"checks": [{"kind": "ports"}]}\n',
])
def test_the_hint_sees_a_ports_check_in_any_style(tmp_path: Path, text: str) -> None:
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    assert prefetch.names_ports([str(tmp_path / "p.yaml")])
    assert prefetch.names_ports([str(tmp_path)])  # found in the folder as well


def test_the_hint_misses_nothing_else(tmp_path: Path) -> None:
    write(tmp_path / "a" / "p.yaml", policy("p", [PROCESS]))
    (tmp_path / "a" / "notes.txt").write_text("kind: ports\n", encoding="utf-8")  # not a policy
    (tmp_path / "a" / "q.yml").write_text("kind: portscan\n", encoding="utf-8")
    assert not prefetch.names_ports([str(tmp_path)])
    assert not prefetch.names_ports([str(tmp_path / "missing.yaml")])


def test_the_hint_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """A FIFO among the policies (the loader reports it as not a regular file) must not hang
    the audit before it even starts: it is not read."""
    os.mkfifo(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("kind: ports\n", encoding="utf-8")
    code = ("import sys; from agent.host import prefetch; "
            f"print(prefetch.names_ports([{str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False, env={"PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr


def test_the_hint_reads_a_bounded_amount(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "MAX_HINT_BYTES", 1000)
    (tmp_path / "a.yaml").write_text("#" * 2000 + "\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("kind: ports\n", encoding="utf-8")
    assert not prefetch.names_ports([str(tmp_path)])  # gave up before b.yaml


def test_no_walk_without_a_ports_check_or_helpers(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    plain = write(tmp_path / "plain.yaml", policy("p", [PROCESS]))
    ports = write(tmp_path / "ports.yaml", policy("p", [PORTS]))
    assert prefetch.start(Path("/"), [str(plain)]) is None
    monkeypatch.setattr(fdwalk, "helpers_for", lambda count: 0)
    assert prefetch.start(Path("/"), [str(ports)]) is None
    assert prefetch.start(tmp_path / "no-such-root", [str(ports)]) is None


def test_a_walk_started_and_not_wanted_is_cancelled(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fdwalk, "helpers_for", lambda count: 1)
    path = write(tmp_path / "p.yaml", policy("p", [PROCESS]))
    (tmp_path / "extra.yaml").write_text("# kind: ports, one day\n", encoding="utf-8")
    fd_walk = prefetch.start(Path("/"), [str(tmp_path)])  # the comment is enough for the guess
    walk = fd_walk.early if fd_walk is not None else None
    assert walk is not None and walk.proc == "/proc"
    helpers = [child.pid for child in walk.helpers]
    loaded = load_for_audit([str(path)], dt.date(2026, 11, 24)).policy_set
    run = audit.run(loaded, Path("/"), fd_walk=fd_walk)
    assert [r.status.value for r in run.results] in (["pass"], ["fail"])
    assert walk.helpers == [] and walk.tokens == -1
    for pid in helpers:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped


def test_the_cli_hands_its_walk_to_the_audit(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fixture root (whose fd tables are links in a tree) the walk the CLI started is
    the one the process table uses, and the audit says what it says without it."""
    root = gateway_host(tmp_path / "host")
    path = write(tmp_path / "p.yaml", policy("p", [PORTS]))
    started: list[fdwalk.Walk] = []
    real_start = prefetch.start

    def start(root: Path, paths: list[str]) -> fdwalk.FdWalk | None:
        monkeypatch.setattr(fdwalk, "helpers_for", lambda count: 1)
        fd_walk = real_start(root, paths)
        assert fd_walk is not None and fd_walk.early is not None
        started.append(fd_walk.early)
        return fd_walk

    def audit_json(out: Path) -> str:
        code = cli.main(["audit", "--policy", str(path), "--root", str(root),
                         "--format", "json", "--output", str(out), "--today", "2026-11-24"])
        assert code == 1
        return out.read_text(encoding="utf-8")

    without = audit_json(tmp_path / "without.json")
    monkeypatch.setattr(prefetch, "start", start)
    with_walk = audit_json(tmp_path / "with.json")
    (walk,) = started
    assert walk.proc == f"{root}/proc" and walk.helpers == []
    assert strip_times(with_walk) == strip_times(without)
    assert '"port": 9100' in without  # node_exporter's listener, owner and all


def strip_times(report: str) -> str:
    return "\n".join(line for line in report.splitlines()
                     if '"duration_ms"' not in line and '"started"' not in line)


def test_a_live_audit_with_the_walk_prefetched_says_the_same(tmp_path: Path) -> None:
    """In pid and network namespaces of its own: 30 processes holding listeners, an audit of
    them without and with a prefetched walk."""
    need_root()
    unshare = need_tool("unshare")
    code = textwrap.dedent(f"""
        import datetime as dt, json, os, socket, subprocess, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from agent import audit
        from agent.audit_policies import load_for_audit
        from agent.host import prefetch
        from agent.host import fdwalk
        from agent.report import json as report
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        children = []
        for port in range(7000, 7030):
            sock = socket.socket()
            sock.bind(("127.0.0.1", port)); sock.listen()
            children.append(subprocess.Popen(["sleep", "600"], pass_fds=[sock.fileno()]))
            sock.close()
        policy = sys.argv[1]
        loaded = load_for_audit([policy], dt.date(2026, 11, 24)).policy_set
        fdwalk.MIN_PER_HELPER = 1
        def results(run):
            return [{{k: v for k, v in r.items() if k != "duration_ms"}}
                    for r in report.as_dict(run)["results"]]
        before = results(audit.run(loaded, Path("/")))
        fd_walk = prefetch.start(Path("/"), [policy])
        walk = fd_walk.early
        assert walk is not None and walk.helpers
        for child in walk.helpers:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        after = results(audit.run(loaded, Path("/"), fd_walk=fd_walk))
        print(json.dumps([before == after, before[0]["status"],
                          len(before[0]["evidence"]["items"])]))
        for child in children:
            child.kill()
    """)
    path = write(tmp_path / "p.yaml", policy("p", [PORTS]))
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "--net", sys.executable,
                           "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == '[true, "fail", 30]'  # 30 listeners not allowed


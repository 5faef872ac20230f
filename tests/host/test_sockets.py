"""Listening sockets: /proc/net parsing against fixture trees, and the live kernel against ``ss``.

The oracle tests open known sockets in a network namespace they create (``unshare --net``) and
assert that what hostguard finds there is exactly what ``ss -H -tulpn`` reports there; the
host's own listeners are never looked at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from agent.host import sockets
from agent.host.facts import ReadError
from agent.host.fdwalk import FdWalk
from agent.host.processes import ProcessTable, read_processes
from agent.host.snapshot import SnapshotRequest, take
from agent.host.sockets import (
    Listener,
    ListenerTable,
    NamespaceRead,
    Owner,
    decode_address,
    parse_proc_net,
    read_listener_table,
    read_listeners,
)
from tests.host.listen_helper import LISTENING, NOBODY
from tests.host.netns_support import SsRow, helper_namespace, parse_ss, ss_in
from tests.support import need_root, need_tool

HOST_NS = 4026531840
CONT_NS = 4026532300
IPV4 = frozenset({"ipv4"})
IPV6 = frozenset({"ipv6"})
DUAL = frozenset({"ipv4", "ipv6"})

TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
              "  timeout inode\n")
TCP6_HEADER = ("  sl  local_address                         remote_address                     "
               "   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
UDP_HEADER = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
              "  timeout inode ref pointer drops\n")


def line(n: int, local: str, remote: str, state: str, uid: int, inode: int) -> str:  # noqa: PLR0917
    return (f"{n:>4}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000 {uid:>5}"
            f"        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


ZERO4 = "00000000:0000"
ZERO6 = "0" * 32 + ":0000"

HOST_TABLES = {
    "tcp": TCP_HEADER
    + line(0, "05000A0A:0016", ZERO4, "0A", 0, 1001)  # 10.10.0.5:22 sshd
    + line(1, "0100007F:238C", ZERO4, "0A", 998, 1002)  # 127.0.0.1:9100 node_exporter
    + line(2, "00000000:0017", ZERO4, "0A", 0, 1003)  # 0.0.0.0:23, no visible owner
    + line(3, "05000A0A:0016", "0B000A0A:C350", "01", 0, 1010),  # an accepted connection
    "tcp6": TCP6_HEADER
    + line(0, "0" * 32 + ":1B59", ZERO6, "0A", 0, 1004)  # [::]:7001
    + line(1, "0000000000000000FFFF00000100007F:1B62", ZERO6, "0A", 0, 1005)  # mapped 127.0.0.1
    + line(2, "B80D0120000000000000000005000000:01BB", ZERO6, "0A", 0, 1006),  # 2001:db8::5
    "udp": UDP_HEADER
    + line(123, "00000000:007B", ZERO4, "07", 0, 1007)  # 0.0.0.0:123 chronyd
    + line(500, "0100007F:A000", "0100007F:0035", "01", 0, 1011)  # connected UDP
    + line(501, "0100007F:0000", ZERO4, "07", 0, 1012),  # no local port: not bound
    "udp6": UDP_HEADER + line(7, "0" * 24 + "01000000:0143", ZERO6, "07", 0, 1008),  # [::1]:323
}
CONT_TABLES = {
    "tcp": TCP_HEADER + line(0, "00000000:18EB", ZERO4, "0A", 999, 2001),  # 0.0.0.0:6379
    "tcp6": TCP6_HEADER, "udp": UDP_HEADER, "udp6": UDP_HEADER,
}
PASSWD = ("root:x:0:0:root:/root:/bin/bash\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n"
          "prometheus:x:998:998::/home/prometheus:/bin/false\n")


def add_process(root: Path, pid: int, name: str, exe: str, uid: int,  # noqa: PLR0917
                netns: int, sockets: tuple[int, ...]) -> None:
    base = root / "proc" / str(pid)
    (base / "ns").mkdir(parents=True)
    (base / "fd").mkdir()
    rest = ["S", "1", str(pid), str(pid), "0", "-1", "4194560"] + ["0"] * 34
    (base / "stat").write_text(f"{pid} ({name}) {' '.join(rest)}\n")
    (base / "status").write_text(f"Name:\t{name}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    (base / "cmdline").write_text(f"{exe}\0")
    (base / "cgroup").write_text("0::/\n")
    (base / "exe").symlink_to(exe)
    (base / "ns" / "net").symlink_to(f"net:[{netns}]")
    (base / "fd" / "0").symlink_to("/dev/null")
    for fd, inode in enumerate(sockets, start=3):
        (base / "fd" / str(fd)).symlink_to(f"socket:[{inode}]")


def write_tables(directory: Path, tables: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (directory / name).write_text(text)


def gateway_host(root: Path) -> Path:
    """Write at ``root`` a gateway host: sshd, node_exporter, fixgw, chronyd, and a container
    with redis (HOST_TABLES and CONT_TABLES, with the processes that hold their sockets)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "proc" / "self" / "ns").mkdir(parents=True)
    (root / "proc" / "self" / "ns" / "net").symlink_to(f"net:[{HOST_NS}]")
    write_tables(root / "proc" / "net", HOST_TABLES)
    add_process(root, 100, "sshd", "/usr/sbin/sshd", 0, HOST_NS, (1001, 1010))
    add_process(root, 101, "node_exporter", "/usr/bin/node_exporter", 998, HOST_NS, (1002,))
    add_process(root, 102, "fixgw-main", "/opt/fix/bin/fixgw-main", 0, HOST_NS,
                (1004, 1005, 1006))
    add_process(root, 103, "chronyd", "/usr/sbin/chronyd", 0, HOST_NS, (1007, 1008))
    add_process(root, 300, "redis-server", "/usr/bin/redis-server", 999, CONT_NS, (2001,))
    write_tables(root / "proc" / "300" / "net", CONT_TABLES)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return gateway_host(tmp_path / "host")


def owner(pid: int, name: str, exe: str, uid: int, user: str | None,  # noqa: PLR0917
          netns: int = HOST_NS) -> Owner:
    return Owner(pid, name, exe, uid, user, netns)


SSHD = owner(100, "sshd", "/usr/sbin/sshd", 0, "root")
EXPORTER = owner(101, "node_exporter", "/usr/bin/node_exporter", 998, "prometheus")
FIXGW = owner(102, "fixgw-main", "/opt/fix/bin/fixgw-main", 0, "root")
CHRONY = owner(103, "chronyd", "/usr/sbin/chronyd", 0, "root")
REDIS = owner(300, "redis-server", "/usr/bin/redis-server", 999, None, CONT_NS)


# --- address decoding and /proc/net parsing ----------------------------------------------------


@pytest.mark.parametrize(("text", "byteorder", "address"), [
    ("0100007F", "little", "127.0.0.1"),
    ("0100007F", "big", "1.0.0.127"),
    ("05000A0A", "little", "10.10.0.5"),
    ("00000000", "little", "0.0.0.0"),
    ("0" * 32, "little", "::"),
    ("00000000000000000000000001000000", "little", "::1"),
    ("00000000000000000000000000000001", "big", "::1"),
    ("0000000000000000FFFF00000100007F", "little", "::ffff:7f00:1"),
    ("B80D0120000000000000000005000000", "little", "2001:db8::5"),
    ("20010DB8000000000000000000000005", "big", "2001:db8::5"),
])
def test_decode_address_word_byte_order(text: str, byteorder: str, address: str) -> None:
    assert decode_address(text, byteorder) == address


@pytest.mark.parametrize("text", ["0100007", "0100007F00", "GG00007F", ""])
def test_decode_address_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError):
        decode_address(text)


def test_parse_keeps_listen_and_unconnected_bound_udp_only() -> None:
    tcp = [(r.address, r.port, r.inode, r.uid)
           for r in parse_proc_net(HOST_TABLES["tcp"], "tcp", "ipv4", "little")]
    assert tcp == [("10.10.0.5", 22, 1001, 0), ("127.0.0.1", 9100, 1002, 998),
                   ("0.0.0.0", 23, 1003, 0)]
    udp = [(r.address, r.port, r.inode)
           for r in parse_proc_net(HOST_TABLES["udp"], "udp", "ipv4", "little")]
    assert udp == [("0.0.0.0", 123, 1007)]
    tcp6 = [(r.address, r.port, r.v6only)
            for r in parse_proc_net(HOST_TABLES["tcp6"], "tcp", "ipv6", "little")]
    assert tcp6 == [("::", 7001, None), ("::ffff:127.0.0.1", 7010, None),
                    ("2001:db8::5", 443, None)]


def test_parse_refuses_a_truncated_line() -> None:
    with pytest.raises(ValueError, match="line 2: too few fields"):
        list(parse_proc_net(TCP_HEADER + "   0: 0100007F:238C 00000000:0000 0A\n", "tcp", "ipv4"))


# --- fixture trees ----------------------------------------------------------------------------


def test_fixture_tree_every_listener_with_owners(tree: Path) -> None:
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.host_netns == HOST_NS
    assert table.namespaces == (NamespaceRead(HOST_NS, "procfs", "proc/net"),
                                NamespaceRead(CONT_NS, "procfs", "pid 300"))
    assert table.owners_complete is True
    assert table.errors == {}
    assert table.listeners == (
        Listener("tcp", "ipv4", "10.10.0.5", 22, None, IPV4, 1001, 0, HOST_NS, 0, (SSHD,)),
        Listener("tcp", "ipv4", "0.0.0.0", 23, None, IPV4, 1003, 0, HOST_NS, 0, ()),
        Listener("tcp", "ipv6", "2001:db8::5", 443, None, IPV6, 1006, 0, HOST_NS, 0, (FIXGW,)),
        Listener("tcp", "ipv6", "::", 7001, None, None, 1004, 0, HOST_NS, 0, (FIXGW,)),
        Listener("tcp", "ipv6", "::ffff:127.0.0.1", 7010, None, IPV4, 1005, 0, HOST_NS, 0,
                 (FIXGW,)),
        Listener("tcp", "ipv4", "127.0.0.1", 9100, None, IPV4, 1002, 998, HOST_NS, 0,
                 (EXPORTER,)),
        Listener("udp", "ipv4", "0.0.0.0", 123, None, IPV4, 1007, 0, HOST_NS, 0, (CHRONY,)),
        Listener("udp", "ipv6", "::1", 323, None, IPV6, 1008, 0, HOST_NS, 0, (CHRONY,)),
        Listener("tcp", "ipv4", "0.0.0.0", 6379, None, IPV4, 2001, 999, CONT_NS, 0, (REDIS,)),
    )
    endpoints = [s.endpoint for s in table.listeners]
    assert endpoints == ["10.10.0.5:22", "0.0.0.0:23", "[2001:db8::5]:443", "[::]:7001",
                         "[::ffff:127.0.0.1]:7010", "127.0.0.1:9100", "0.0.0.0:123",
                         "[::1]:323", "0.0.0.0:6379"]


def test_fixture_never_uses_netlink_by_default(tree: Path) -> None:
    # A fixture root is read from its own files even though this machine's kernel is there.
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert {n.source for n in table.namespaces} == {"procfs"}


def test_fixture_namespace_without_tables_is_an_error(tree: Path) -> None:
    for name in ("tcp", "tcp6", "udp", "udp6"):
        (tree / "proc" / "300" / "net" / name).unlink()
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.errors == {CONT_NS: f"{tree}/proc/300/net/tcp does not exist"}
    assert table.namespaces[1] == NamespaceRead(CONT_NS, "", "",
                                                f"{tree}/proc/300/net/tcp does not exist")
    assert [s.port for s in table.listeners if s.netns == CONT_NS] == []


def test_fixture_kernel_without_ipv6_tables(tree: Path) -> None:
    (tree / "proc" / "net" / "tcp6").unlink()
    (tree / "proc" / "net" / "udp6").unlink()
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.errors == {}
    assert [s.port for s in table.listeners if s.netns == HOST_NS] == [22, 23, 9100, 123]


def test_fixture_malformed_table_is_an_error(tree: Path) -> None:
    (tree / "proc" / "net" / "udp").write_text(UDP_HEADER + "  1: zz\n")
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.errors == {HOST_NS: f"{tree}/proc/net/udp: line 2: too few fields"}


def test_fixture_without_proc_self_host_is_pid_1s_namespace(tree: Path) -> None:
    (tree / "proc" / "self" / "ns" / "net").unlink()
    add_process(tree, 1, "init", "/sbin/init", 0, HOST_NS, ())
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.host_netns == HOST_NS
    assert [(n.netns, n.via) for n in table.namespaces] == [(HOST_NS, "proc/net"),
                                                            (CONT_NS, "pid 300")]


def test_fixture_without_proc_self_or_pid_1_has_no_host_namespace(tree: Path) -> None:
    (tree / "proc" / "self" / "ns" / "net").unlink()
    table = read_listeners(tree, read_processes(tree, sockets=True))
    assert table.host_netns is None
    assert table.namespaces[0] == NamespaceRead(None, "procfs", "proc/net")
    # The host processes' namespace is then a namespace of its own, read through its
    # processes, whose net/ directories this tree does not have.
    assert table.errors == {HOST_NS: f"{tree}/proc/103/net/tcp does not exist"}


def test_unreadable_exe_means_owners_may_be_missing(tree: Path) -> None:
    processes = read_processes(tree, sockets=True)
    hidden = replace(processes.processes[103], exe=None, netns=None, socket_inodes=frozenset(),
                     unreadable={"exe": "Permission denied"})
    table = ProcessTable({**processes.processes, 103: hidden}, processes.own_netns,
                         processes.users)
    listeners = read_listeners(tree, table)
    assert listeners.owners_complete is False
    assert listeners.unreadable_fds == (103,)
    assert listeners.unknown_netns == (103,)
    assert [s.owners for s in listeners.listeners if s.port in (123, 323)] == [(), ()]


def test_snapshot_reads_the_process_table_once_and_shares_it(tree: Path) -> None:
    snap = take(tree, SnapshotRequest(listeners=True))
    assert snap.processes is not None
    assert sorted(snap.processes.processes) == [100, 101, 102, 103, 300]
    assert sorted(snap.processes.processes[100].socket_inodes) == [1001, 1010]
    assert isinstance(snap.listeners, ListenerTable)
    assert len(snap.listeners.listeners) == 9
    assert take(tree, SnapshotRequest(processes=True)).listeners is None
    merged = SnapshotRequest(listeners=True) | SnapshotRequest(threads=True)
    assert merged.listeners and merged.threads


def test_listeners_read_no_command_line_and_credentials_of_socket_holders_only(
        tree: Path) -> None:
    add_process(tree, 400, "sleep", "/usr/bin/sleep", 1000, HOST_NS, ())  # holds no socket
    for pid in (100, 101, 102, 103, 300, 400):
        for name in ("cmdline", "cgroup", *(("status",) if pid == 400 else ())):
            (tree / "proc" / str(pid) / name).unlink()
            (tree / "proc" / str(pid) / name).mkdir()  # would be recorded if it were read
    snap = take(tree, SnapshotRequest(listeners=True))
    assert snap.processes is not None
    assert all(p.unreadable == {} for p in snap.processes.processes.values())
    assert not snap.processes.processes[400].has("uid")
    assert snap.processes.processes[100].uid == 0
    # The same listeners and owners as from the whole process table.
    assert snap.listeners == read_listeners(tree, read_processes(tree, sockets=True))


def test_listener_table_needs_the_process_table(tree: Path) -> None:
    error = read_listener_table(tree, None)
    assert not isinstance(error, ListenerTable)
    assert error.reason == "the process table was not read"


@pytest.mark.parametrize("helpers", [0, 1])
def test_snapshot_reads_the_socket_tables_before_the_fd_tables_are_in(
        tree: Path, helpers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, ...]] = []
    real = sockets.read_socket_table

    def spy(root: Path, table: ProcessTable) -> sockets.Sockets | ReadError:
        seen.append(tuple(p.has("socket_inodes") for p in table.processes.values()))
        assert ("socket_inodes" in table.fields) is not bool(helpers)  # it says what it has
        return real(root, table)

    monkeypatch.setattr(sockets, "read_socket_table", spy)
    snap = take(tree, SnapshotRequest(listeners=True), fd_walk=FdWalk(helpers))
    # With a helper walking, the tables are read while it ends; alone, after the pass.
    assert seen == [(not helpers,) * 5]
    assert snap.listeners == read_listeners(tree, read_processes(tree, sockets=True))


def test_an_unexpected_failure_reading_socket_tables_is_a_read_error(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = read_processes(tree, sockets=True)

    def fails(root: Path, table: ProcessTable, netlink: bool | None = None) -> sockets.Sockets:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(sockets, "read_sockets", fails)
    error = sockets.read_socket_table(tree, table)
    assert error == ReadError("listening sockets: [Errno 12] Cannot allocate memory")
    assert read_listener_table(tree, table) == error


def test_socket_tables_that_failed_early_fail_the_listener_table(tree: Path) -> None:
    table = read_processes(tree, sockets=True)
    failed = ReadError("listening sockets: no netlink")
    assert read_listener_table(tree, table, failed) is failed
    early = sockets.read_socket_table(tree, table)
    assert read_listener_table(tree, table, early) == read_listeners(tree, table)


# --- the live kernel against ss ---------------------------------------------------------------


def expected_helper_rows(pid: int, child: int) -> set[SsRow]:
    rows: set[SsRow] = set()
    for (proto, address, port), dual in LISTENING.items():
        pids = {7006: frozenset({child}), 7007: frozenset({pid, child})}.get(port,
                                                                               frozenset({pid}))
        rows.add((proto, address, port, dual, "lo" if port == 7011 else "", pids))
    return rows


def hostguard_rows(table: ListenerTable, netns: int) -> set[SsRow]:
    names = {0: "", 1: "lo"}  # lo is ifindex 1 in every namespace
    return {(s.proto, s.address, s.port, s.families == DUAL, names[s.ifindex],
             frozenset(o.pid for o in s.owners))
            for s in table.listeners if s.netns == netns}


def test_oracle_sock_diag_equals_ss_in_a_fresh_namespace() -> None:
    with helper_namespace() as ns:
        table = read_listeners(Path("/"), read_processes(Path("/"), sockets=True))
        oracle = ss_in(ns.pid)
    read = next(n for n in table.namespaces if n.netns == ns.netns)
    assert read == NamespaceRead(ns.netns, "sock_diag", f"/proc/{ns.pid}/ns/net")
    assert oracle == expected_helper_rows(ns.pid, ns.child)  # the oracle sees what we opened
    assert hostguard_rows(table, ns.netns) == oracle
    mine = {(s.proto, s.port): s for s in table.listeners if s.netns == ns.netns}
    assert mine["tcp", 7002].v6only is True and mine["tcp", 7002].families == IPV6
    assert mine["tcp", 7003].v6only is False and mine["tcp", 7003].families == DUAL
    assert mine["udp", 7009].families == DUAL and mine["udp", 7005].families == IPV6
    assert mine["tcp", 7010].families == IPV4
    assert [(o.uid, o.user) for o in mine["tcp", 7006].owners] == [(NOBODY, "nobody")]
    assert [o.user for o in mine["tcp", 7007].owners] == ["root", "nobody"]
    assert all(o.name == "python" or o.name.startswith("python") for s in mine.values()
               for o in s.owners)


def test_oracle_procfs_fallback_equals_ss_but_leaves_v6only_unknown() -> None:
    with helper_namespace() as ns:
        table = read_listeners(Path("/"), read_processes(Path("/"), sockets=True), netlink=False)
        oracle = ss_in(ns.pid)
    read = next(n for n in table.namespaces if n.netns == ns.netns)
    assert read == NamespaceRead(ns.netns, "procfs", f"pid {ns.pid}")
    # procfs knows neither v6only nor the bound device: compare what it does know.
    found = {(p, a, port, pids) for p, a, port, _, _, pids in hostguard_rows(table, ns.netns)}
    assert found == {(p, a, port, pids) for p, a, port, _, _, pids in oracle}
    wildcard6 = [s for s in table.listeners if s.netns == ns.netns and s.address == "::"]
    assert sorted(s.port for s in wildcard6) == [7002, 7003, 7005, 7009]
    assert {(s.v6only, s.families) for s in wildcard6} == {(None, None)}


def test_namespace_mounted_by_ip_netns_without_processes_is_read() -> None:
    need_root()
    ip = need_tool("ip")
    name = f"hg-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([ip, "netns", "add", name], check=True)
    leftover = Path(f"/run/netns/{name}-gone")  # a plain file: no namespace is mounted there
    try:
        leftover.touch()
        inode = os.stat(f"/run/netns/{name}").st_ino
        table = read_listeners(Path("/"), read_processes(Path("/"), sockets=True))
    finally:
        leftover.unlink(missing_ok=True)
        subprocess.run([ip, "netns", "del", name], check=True)
    assert NamespaceRead(inode, "sock_diag", f"/run/netns/{name}") in table.namespaces
    assert [s for s in table.listeners if s.netns == inode] == []
    assert not [n for n in table.namespaces if n.via == str(leftover)]
    assert inode not in table.errors


MANY = 3000


def test_thousands_of_sockets_in_one_pass() -> None:
    """MANY TCP + MANY UDP listeners: every one found, with its owner, as ss sees them."""
    need_root()
    unshare = need_tool("unshare")
    code = (
        "import socket, sys\n"
        "held = []\n"
        f"for port in range(20000, 20000 + {MANY}):\n"
        "    t = socket.socket(); t.bind(('127.0.0.1', port)); t.listen(1)\n"
        "    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::', port))\n"
        "    held += [t, u]\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([unshare, "--net", sys.executable, "-c", code],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        netns = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
        clock = time.perf_counter()
        table = read_listeners(Path("/"), read_processes(Path("/"), sockets=True))
        elapsed = time.perf_counter() - clock
        oracle = ss_in(proc.pid)
    finally:
        proc.kill()
        proc.wait(10)
    found = hostguard_rows(table, netns)
    assert len(found) == 2 * MANY
    assert found == oracle
    print(f"\n{2 * MANY} sockets in a namespace: processes + listeners read in {elapsed:.3f}s")


def test_parse_ss_forms() -> None:
    text = (
        'tcp LISTEN 0 8 *:7003 *:* users:(("python",pid=5,fd=6))\n'
        'tcp LISTEN 0 8 0.0.0.0%lo:7011 0.0.0.0:* users:(("a b",pid=5,fd=14),("c",pid=6,fd=1))\n'
        "udp UNCONN 0 0 [::ffff:127.0.0.1]:53 *:*\n"
    )
    assert parse_ss(text) == {
        ("tcp", "::", 7003, True, "", frozenset({5})),
        ("tcp", "0.0.0.0", 7011, False, "lo", frozenset({5, 6})),
        ("udp", "::ffff:127.0.0.1", 53, False, "", frozenset()),
    }

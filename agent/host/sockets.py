"""Every listening socket: TCP in LISTEN and bound, unconnected UDP, IPv4 and IPv6, per netns.

What ``ss -tulpn`` shows, read once: one pass over each network namespace's socket tables plus
the shared process table (:func:`agent.host.processes.read_processes` with
:data:`PROCESS_FIELDS`, and the credentials of the processes holding a socket:
:data:`OWNER_DETAIL`), whose socket inodes map each socket to the processes holding it.

Sources, per namespace:

- **sock_diag** (live host, ``root`` is ``/``): a ``NETLINK_SOCK_DIAG`` dump
  (``inet_diag_req_v2``), as ``ss`` does. It carries ``INET_DIAG_SKV6ONLY``, so a ``[::]``
  listener is known to be IPv6-only or dual-stack. A netlink socket sees the namespace it was
  created in: for another namespace a short-lived thread ``setns()``-es into it (via
  ``/proc/PID/ns/net`` of a process in it, or a ``/run/netns`` mount) and creates the netlink
  socket there; the thread then ends, the dump runs from the caller.
- **procfs** (a fixture tree, or when ``setns`` or sock_diag is refused): ``net/tcp``,
  ``net/tcp6``, ``net/udp``, ``net/udp6``; the host namespace from ``root/proc/net`` (which is
  ``proc/self/net``), any other from ``root/proc/PID/net`` of one process in it. These files do
  not say whether an IPv6 socket is v6only, so a wildcard ``[::]`` listener read this way has
  ``v6only = None`` and ``families = None`` (unknown); checks must not guess.

The *host* namespace is :attr:`ProcessTable.own_netns`, the namespace of ``root/proc/self``:
on a live host the namespace hostguard runs in; in a fixture tree the one its ``proc/self/ns/net``
link names (failing that, PID 1's; ``None`` when neither is there), whose tables are
``root/proc/net/*``.

A socket no visible process holds has no owners; :attr:`ListenerTable.owners_complete` says
whether every process's fd table could be read (if not, any socket may have unseen owners). A
process whose ``exe`` link could not be read counts as unreadable too: the kernel guards ``exe``
and the ``fd/*`` links with the same ptrace access check, while the ``fd`` directory listing
itself may still succeed.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.processes import Detail, Process, ProcessTable

TCP_LISTEN = 10
TCP_CLOSE = 7
"""Kernel socket states (include/net/tcp_states.h); unconnected UDP sockets are ``CLOSE``."""

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_SKV6ONLY = 11
CLONE_NEWNET = 0x40000000

_NLMSGHDR = struct.Struct("=IHHII")
_REQ_V2 = struct.Struct("=BBBBI48s")
"""inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (zeroed)."""
_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
"""inet_diag_msg: family state timer retrans sport dport src dst if cookie expires rq wq uid ino."""
_RTA = struct.Struct("=HH")

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_FAMILIES: dict[int, str] = {int(socket.AF_INET): "ipv4", int(socket.AF_INET6): "ipv6"}
_PROC_FILES = (("tcp", "ipv4", "tcp"), ("tcp", "ipv6", "tcp6"),
               ("udp", "ipv4", "udp"), ("udp", "ipv6", "udp6"))


class SocketsUnavailable(Exception):
    """A namespace's socket tables could not be read by one method."""


@record
class Owner:
    """A process holding a listening socket among its open files."""

    pid: int
    name: str
    """``comm`` (at most 15 bytes; attacker-controlled)."""
    exe: str | None
    """``/proc/PID/exe`` target; None when unreadable or a kernel thread."""
    uid: int | None
    """Effective uid."""
    user: str | None
    """User name of ``uid``; None when the root's passwd does not name it."""
    netns: int | None
    """The process's own network namespace (may differ from the socket's)."""


@record
class Listener:
    """One listening TCP socket or bound, unconnected UDP socket."""

    proto: str
    """``tcp`` or ``udp``."""
    family: str
    """Socket family: ``ipv4`` or ``ipv6``."""
    address: str
    """Bound address, compressed text (``0.0.0.0``, ``::``, ``::ffff:127.0.0.1``)."""
    port: int
    """Bound port."""
    v6only: bool | None
    """For IPv6 sockets: IPV6_V6ONLY; None when unknown (procfs) or IPv4."""
    families: frozenset[str] | None
    """Families it accepts: {"ipv4","ipv6"} for a dual-stack ``[::]``; None when unknown."""
    inode: int
    """Socket inode (``socket:[INODE]`` among the owners' fds)."""
    uid: int
    """uid the socket was created under (the kernel's ``sock_i_uid``)."""
    netns: int | None
    """Inode of the network namespace the socket lives in."""
    ifindex: int = 0
    """SO_BINDTODEVICE interface index; 0 when unbound or unknown (procfs)."""
    owners: tuple[Owner, ...] = ()
    """Processes holding it; empty when none could be seen."""

    @property
    def wildcard(self) -> bool:
        """Bound to the unspecified address (``0.0.0.0`` or ``::``)."""
        return ipaddress.ip_address(self.address).is_unspecified

    @property
    def endpoint(self) -> str:
        """``0.0.0.0:22``, ``[::]:22``; a dual-stack wildcard is ``*:22`` as ``ss`` writes it."""
        if self.family == "ipv6":
            if self.wildcard and self.families == frozenset({"ipv4", "ipv6"}):
                return f"*:{self.port}"
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@record
class NamespaceRead:
    """How one network namespace's sockets were read."""

    netns: int | None
    """Namespace inode (None: the fixture's host namespace has no ``proc/self/ns/net``)."""
    source: str
    """``sock_diag`` or ``procfs``; empty when it could not be read at all."""
    via: str
    """What was entered or read: ``self``, ``pid 1234``, ``/run/netns/x``."""
    error: str | None = None
    """Why the namespace could not be read (its listeners are then missing)."""
    notes: tuple[str, ...] = ()
    """Fallbacks taken (e.g. why sock_diag was not used)."""


@record
class ListenerTable:
    """Every listener found, with what could not be seen."""

    listeners: tuple[Listener, ...]
    """Sorted by namespace, protocol, port, address."""
    host_netns: int | None
    """The namespace hostguard runs in (or the fixture's ``proc/self/ns/net``)."""
    namespaces: tuple[NamespaceRead, ...]
    """One per namespace read (the host's first)."""
    owners_complete: bool
    """False when some process's fd table could not be read: owners may be missing."""
    unreadable_fds: tuple[int, ...] = ()
    """Pids whose open files could not be listed."""
    unknown_netns: tuple[int, ...] = ()
    """Pids whose network namespace could not be read (their namespace may be missing)."""
    errors: Mapping[int | None, str] = field(default_factory=dict)
    """Namespace -> why it could not be read."""


def _holds_sockets(process: Process) -> bool:
    return bool(process.socket_inodes)


PROCESS_FIELDS = frozenset({"socket_inodes", "netns"})
"""What :func:`read_listeners` needs of every process: the sockets it holds and its network
namespace (each one is read); name and pid always come with the table."""
OWNER_DETAIL = Detail(_holds_sockets, frozenset({"uid", "user", "exe"}))
"""The owners' credentials and exe, read only for the processes holding a socket (an
unreadable exe marks the fds unreadable too: the kernel guards both with one check; any other
process whose fd links are guarded has them fail to read, or holds none)."""


# --- procfs --------------------------------------------------------------------------------


def decode_address(text: str, byteorder: str = sys.byteorder) -> str:
    """A ``/proc/net/tcp*`` address field (hex) as text.

    The kernel prints each 32-bit word of the network-order address as a native integer
    (``%08X``): on little-endian hosts ``0100007F`` is 127.0.0.1. IPv6 is four such words.
    """
    if len(text) not in (8, 32):
        raise ValueError(f"bad address {text!r}")
    raw = bytes.fromhex(text)
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


@lru_cache(maxsize=1024)
def address_text(raw: str | bytes) -> str:
    """Canonical text of an address; IPv4-mapped IPv6 as ``::ffff:127.0.0.1`` (as ``ss``).
    Cached: a host's listeners share a handful of addresses, and parsing one costs µs."""
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


class _Row(NamedTuple):  # internal and made hundreds of times: a tuple costs least
    proto: str
    family: str
    address: str
    port: int
    v6only: bool | None
    inode: int
    uid: int
    ifindex: int = 0


def parse_proc_net(text: str, proto: str, family: str,
                   byteorder: str = sys.byteorder) -> Iterator[_Row]:
    """Listening rows of one ``/proc/net/{tcp,tcp6,udp,udp6}`` text.

    TCP: state ``0A`` (LISTEN). UDP: state ``07`` (unconnected) with a local port and no
    remote port. Raises ValueError on a malformed line.
    """
    want = TCP_LISTEN if proto == "tcp" else TCP_CLOSE
    for number, line in enumerate(text.splitlines()):
        parts = line.split()
        if number == 0 or not parts:
            continue  # header
        if len(parts) < 10:
            raise ValueError(f"line {number + 1}: too few fields")
        local, remote, state = parts[1], parts[2], int(parts[3], 16)
        if state != want:
            continue
        laddr, _, lport = local.partition(":")
        _, _, rport = remote.partition(":")
        port = int(lport, 16)
        if proto == "udp" and (port == 0 or int(rport, 16) != 0):
            continue
        yield _Row(proto, family, address_text(decode_address(laddr, byteorder)), port, None,
                   int(parts[9]), int(parts[7]))


def _read_procfs(net_dir: Path) -> list[_Row]:
    rows: list[_Row] = []
    for proto, family, name in _PROC_FILES:
        path = net_dir / name
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            if family == "ipv6":
                continue  # kernel without IPv6: no such sockets can exist
            raise SocketsUnavailable(f"{path} does not exist") from None
        except OSError as exc:
            raise SocketsUnavailable(f"{path}: {exc.strerror or exc}") from None
        try:
            rows.extend(parse_proc_net(text, proto, family))
        except ValueError as exc:
            raise SocketsUnavailable(f"{path}: {exc}") from None
    return rows


# --- sock_diag -----------------------------------------------------------------------------


def _netlink_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         NETLINK_SOCK_DIAG)


def _dump(sock: socket.socket, family: int, proto: str, seq: int) -> list[_Row]:
    states = 1 << (TCP_LISTEN if proto == "tcp" else TCP_CLOSE)
    body = _REQ_V2.pack(family, PROTOCOLS[proto], 0, 0, states, bytes(48))
    sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                             NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    rows: list[_Row] = []
    buf = bytearray(1 << 20)
    fam = _FAMILIES[family]
    while True:
        size = sock.recv_into(buf)
        offset = 0
        while offset + _NLMSGHDR.size <= size:
            length, kind, _, _, _ = _NLMSGHDR.unpack_from(buf, offset)
            if length < _NLMSGHDR.size or offset + length > size:
                raise SocketsUnavailable("malformed netlink message")
            if kind == NLMSG_DONE:
                return rows
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", buf, offset + _NLMSGHDR.size)[0]
                raise SocketsUnavailable(
                    f"sock_diag {proto}/{fam}: {os.strerror(code) if code else 'error'}")
            if kind == SOCK_DIAG_BY_FAMILY:
                rows.append(_diag_row(buf, offset + _NLMSGHDR.size, offset + length, proto))
            offset += (length + 3) & ~3


def _diag_row(buf: bytearray, start: int, end: int, proto: str) -> _Row:
    (family, _state, _, _, sport, _dport, src, _dst, ifindex, _cookie, _exp, _rq, _wq, uid,
     inode) = _DIAG_MSG.unpack_from(buf, start)
    v6only: bool | None = None
    at = start + _DIAG_MSG.size
    while at + _RTA.size <= end:
        rta_len, rta_type = _RTA.unpack_from(buf, at)
        if rta_len < _RTA.size:
            break
        if rta_type == INET_DIAG_SKV6ONLY and rta_len > _RTA.size:
            v6only = buf[at + _RTA.size] != 0
        at += (rta_len + 3) & ~3
    raw = bytes(src[:4]) if family == socket.AF_INET else bytes(src)
    # A kernel that does not report SKV6ONLY leaves v6only None: unknown, never guessed.
    return _Row(proto, _FAMILIES[family], address_text(raw),
                int.from_bytes(sport, "big"), v6only if family == socket.AF_INET6 else None,
                inode, uid, ifindex)


def _read_diag(sock: socket.socket) -> list[_Row]:
    rows: list[_Row] = []
    try:
        for seq, (family, proto) in enumerate(
                ((socket.AF_INET, "tcp"), (socket.AF_INET6, "tcp"),
                 (socket.AF_INET, "udp"), (socket.AF_INET6, "udp")), start=1):
            try:
                rows.extend(_dump(sock, family, proto, seq))
            except OSError as exc:
                raise SocketsUnavailable(f"sock_diag: {exc.strerror or exc}") from None
    finally:
        sock.close()
    return rows


def _setns(fd: int) -> None:
    # os.setns (Python 3.12+) would do; ctypes only loads when another namespace is entered.
    import ctypes  # noqa: PLC0415 - only when entering another namespace

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _socket_in(ns_fd: int) -> socket.socket:
    """A sock_diag socket created inside the namespace ``ns_fd`` by a throwaway thread.

    ``setns(CLONE_NEWNET)`` changes only the calling thread; the thread ends right after
    creating the socket, so no other code ever runs in the foreign namespace.
    """
    import threading  # noqa: PLC0415 - only another namespace needs a thread

    made: list[socket.socket] = []
    failed: list[OSError] = []

    def enter() -> None:
        try:
            _setns(ns_fd)
            made.append(_netlink_socket())
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter, name="hostguard-setns", daemon=True)
    thread.start()
    thread.join()
    if failed or not made:
        exc = failed[0] if failed else OSError(errno.EIO, "setns thread failed")
        raise SocketsUnavailable(f"setns: {exc.strerror or exc}")
    return made[0]


def _open_netns(candidates: Iterable[Path], inode: int) -> tuple[int, str]:
    """An fd of namespace ``inode`` from the first candidate still naming it."""
    last = "no process left in it"
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            last = f"{path}: {exc.strerror or exc}"
            continue
        if os.fstat(fd).st_ino == inode:  # guards against pid reuse
            return fd, str(path)
        os.close(fd)
        last = f"{path} no longer names net:[{inode}]"
    raise SocketsUnavailable(last)


# --- the table -----------------------------------------------------------------------------


def _namespaces(table: ProcessTable) -> dict[int, list[int]]:
    """netns inode -> pids in it."""
    members: dict[int, list[int]] = {}
    for process in table.processes.values():
        if process.netns is not None:
            members.setdefault(process.netns, []).append(process.pid)
    return members


def _mounted_namespaces(root: Path) -> dict[int, Path]:
    """``/run/netns`` mounts (``ip netns add``): namespaces that may hold no process."""
    found: dict[int, Path] = {}
    base = root / "run" / "netns"
    try:
        names = sorted(os.listdir(base))
        nsfs = os.stat(root / "proc" / "self" / "ns" / "net").st_dev
    except OSError:
        return found
    for name in names:
        try:
            info = os.stat(base / name)
        except OSError:
            continue
        if info.st_dev == nsfs:  # a left-over file whose namespace is gone is not mounted
            found.setdefault(info.st_ino, base / name)
    return found


def read_listeners(root: Path, table: ProcessTable, netlink: bool | None = None) -> ListenerTable:
    """Every listener in every network namespace the process table shows.

    ``table`` must have been read with :data:`PROCESS_FIELDS` and :data:`OWNER_DETAIL` (or
    every field, ``sockets=True``). ``netlink`` forces (True) or forbids (False) sock_diag; by
    default it is used when ``root`` is ``/``.
    """
    return read_sockets(root, table, netlink).owned(table)


def read_sockets(root: Path, table: ProcessTable, netlink: bool | None = None) -> Sockets:
    """The first half of :func:`read_listeners`: the socket tables of the namespaces ``table``
    shows, which needs the processes' namespaces but not yet their fd tables (the audit reads
    them while the fd walk ends)."""
    live = root.resolve() == Path("/")
    use_diag = live if netlink is None else netlink
    members = _namespaces(table)
    mounts = _mounted_namespaces(root) if live else {}
    host = table.own_netns
    if host is None and not live and 1 in table.processes:
        host = table.processes[1].netns  # a fixture without proc/self: PID 1's namespace
    order: list[int | None] = [host]
    order += sorted(set(members) - {host})
    order += sorted(set(mounts) - set(members) - {host})

    rows: list[tuple[int | None, _Row]] = []
    reads: list[NamespaceRead] = []
    errors: dict[int | None, str] = {}
    for netns in order:
        pids = members.get(netns, []) if netns is not None else []
        mount = mounts.get(netns) if netns is not None else None
        read, found = _read_namespace(root, netns, netns == host, pids, mount=mount,
                                      use_diag=use_diag)
        reads.append(read)
        if read.error is not None:
            errors[netns] = read.error
        rows.extend((netns, row) for row in found)
    return Sockets(host, rows, tuple(reads), errors)


class Sockets(NamedTuple):
    """Every namespace's listening sockets, not yet given their owners."""

    host: int | None
    rows: list[tuple[int | None, _Row]]
    reads: tuple[NamespaceRead, ...]
    errors: dict[int | None, str]

    def owned(self, table: ProcessTable) -> ListenerTable:
        """The listeners, each with the processes of ``table`` holding it."""
        holders: dict[int, list[Process]] = {}
        wanted = {row.inode for _, row in self.rows}
        for process in table.processes.values():
            for inode in process.socket_inodes & wanted:
                holders.setdefault(inode, []).append(process)
        listeners = [
            Listener(
                proto=row.proto, family=row.family, address=row.address, port=row.port,
                v6only=row.v6only, families=_families(row), inode=row.inode, uid=row.uid,
                netns=netns, ifindex=row.ifindex,
                owners=tuple(Owner(p.pid, p.name, p.exe, p.uid, p.user, p.netns)
                             for p in sorted(holders.get(row.inode, ()), key=lambda p: p.pid)),
            )
            for netns, row in self.rows
        ]
        listeners.sort(key=lambda s: (s.netns or 0, s.proto, s.port, s.family, s.address,
                                      s.inode))
        # exe and the fd links are guarded by the same ptrace check: a process whose exe could
        # not be read (permission) has fds that cannot be read either, whatever the fd listing
        # said.
        unreadable = tuple(p.pid for p in table.processes.values()
                           if "fd" in p.unreadable or "exe" in p.unreadable)
        unknown_ns = tuple(p.pid for p in table.processes.values() if p.netns is None)
        return ListenerTable(tuple(listeners), self.host, self.reads, not unreadable,
                             unreadable, unknown_ns, self.errors)


def _families(row: _Row) -> frozenset[str] | None:
    return _families_of(row.family, row.address, row.v6only)


@lru_cache(maxsize=1024)
def _families_of(family: str, text: str, v6only: bool | None) -> frozenset[str] | None:
    address = ipaddress.ip_address(text)
    if family == "ipv4":
        return frozenset({"ipv4"})
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return frozenset({"ipv4"})  # only a v6only=0 socket can bind a mapped address
    if not address.is_unspecified:
        return frozenset({"ipv6"})
    if v6only is None:
        return None
    return frozenset({"ipv6"}) if v6only else frozenset({"ipv4", "ipv6"})


def _read_namespace(root: Path, netns: int | None, is_host: bool, pids: list[int], *,
                    mount: Path | None, use_diag: bool) -> tuple[NamespaceRead, list[_Row]]:
    notes: list[str] = []
    proc = root / "proc"
    if use_diag:
        try:
            if is_host:
                return NamespaceRead(netns, "sock_diag", "self"), _read_diag(_netlink_socket())
            assert netns is not None
            candidates = [proc / str(pid) / "ns" / "net" for pid in pids]
            if mount is not None:
                candidates.append(mount)
            fd, via = _open_netns(candidates, netns)
            try:
                sock = _socket_in(fd)
            finally:
                os.close(fd)
            return NamespaceRead(netns, "sock_diag", via), _read_diag(sock)
        except (SocketsUnavailable, OSError) as exc:
            notes.append(f"sock_diag not used: {exc}")
    dirs = [proc / "net"] if is_host else [proc / str(pid) / "net" for pid in pids]
    last = "no process left in it" if dirs else "no process in it to read /proc/PID/net of"
    for net_dir in dirs:
        try:
            rows = _read_procfs(net_dir)
        except SocketsUnavailable as exc:
            last = str(exc)
            continue
        if not is_host and netns is not None and not _still_in(net_dir.parent, netns):
            last = f"{net_dir.parent} left net:[{netns}] while it was read"
            continue
        via = "proc/net" if is_host else f"pid {net_dir.parent.name}"
        return NamespaceRead(netns, "procfs", via, None, tuple(notes)), rows
    return NamespaceRead(netns, "", "", last, tuple(notes)), []


def _still_in(pid_dir: Path, netns: int) -> bool:
    try:
        link = os.readlink(pid_dir / "ns" / "net")
    except OSError:
        return False
    return link == f"net:[{netns}]"


def read_listener_table(root: Path, table: ProcessTable | None,
                        sockets: Sockets | ReadError | None = None) -> ListenerTable | ReadError:
    """:func:`read_listeners`, with an unexpected failure turned into a :class:`ReadError`
    (``sockets``: :func:`read_socket_table` of this table done earlier)."""
    if table is None:
        return ReadError("the process table was not read")
    if sockets is None:
        sockets = read_socket_table(root, table)
    if isinstance(sockets, ReadError):
        return sockets
    try:
        return sockets.owned(table)
    except (OSError, ValueError) as exc:
        return ReadError(f"listening sockets: {exc}")


def read_socket_table(root: Path, table: ProcessTable) -> Sockets | ReadError:
    """:func:`read_sockets`, with an unexpected failure turned into a :class:`ReadError`."""
    try:
        return read_sockets(root, table)
    except (OSError, ValueError) as exc:
        return ReadError(f"listening sockets: {exc}")

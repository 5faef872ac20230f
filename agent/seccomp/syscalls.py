"""Syscall names, numbers and systemd-style ``@groups``.

Names are resolved to numbers per architecture through libseccomp (via pyseccomp), never through a
hand-kept table. libseccomp answers a name lookup with a plain integer, and two negative answers
mean different things:

* ``-1``: libseccomp knows no syscall of that name on any architecture -> :attr:`Status.UNKNOWN`
  (a typo: ``hostguard lint`` reports it as an error);
* below ``-1`` (a "pseudo-syscall" number such as ``-10060`` for ``socketcall`` on x86_64): the
  name is a syscall on other architectures only -> :attr:`Status.ABSENT` (nothing to filter here).

:func:`lookup` returns that distinction as a :class:`Resolution`; :func:`resolve` is the short
form used by the compiler and the format converters::

    resolve("read", "x86_64")        # 0
    resolve("socketcall", "x86_64")  # None: exists on x86, not on x86_64
    resolve("socketcall", "x86")     # 102
    resolve("no_such_call")          # raises UnknownSyscall

Architecture names are libseccomp's (``native``, ``x86_64``, ``x86``, ``x32``, ``aarch64``,
``arm`` ...). :func:`other_abis` names the further ABIs a CPU of the native architecture can enter
(x86 and x32 on x86_64): a filter must block those, or they are a way around it.

:data:`GROUPS` holds systemd's ``@groups`` exactly as systemd 252 (the version installed on the
build hosts; ``src/shared/seccomp-util.c``) defines them, nested references kept
(``@system-service`` names ``@aio``, ``@basic-io`` ...); :func:`expand` turns a list of names and
groups into names. Like systemd's, the groups name syscalls of every architecture and a few that
libseccomp 2.5 does not know at all (``uretprobe`` ...): callers skip a group member that
:func:`lookup` calls UNKNOWN or ABSENT, and only report names written out by hand.
systemd's ``@known`` (every syscall systemd knows of) is left out: it is not a policy group.
``tests/seccomp/test_syscalls.py`` compares every group with ``systemd-analyze syscall-filter``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import cache

from agent.core.record import record
from agent.seccomp.binding import pyseccomp


class UnknownSyscall(ValueError):
    """A name libseccomp knows on no architecture."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown syscall {name!r}")
        self.name = name


class UnknownArch(ValueError):
    """An architecture name libseccomp (through pyseccomp) does not know."""

    def __init__(self, arch: str) -> None:
        super().__init__(f"unknown architecture {arch!r}; known: {', '.join(ARCHES)}")
        self.arch = arch


class UnknownGroup(ValueError):
    """An ``@group`` that is not in :data:`GROUPS`."""

    def __init__(self, group: str) -> None:
        super().__init__(f"unknown syscall group {group!r}")
        self.group = group


class Status(StrEnum):
    """What libseccomp says about a name on one architecture."""

    KNOWN = "known"
    """A syscall of this architecture; :attr:`Resolution.number` holds its number."""
    ABSENT = "absent"
    """A syscall of other architectures only (libseccomp answered a number below -1)."""
    UNKNOWN = "unknown"
    """Not a syscall anywhere (libseccomp answered -1): a typo or a made-up name."""


@record
class Resolution:
    """The answer to "what number has syscall ``name`` on ``arch``?"."""

    name: str
    """The syscall name asked about."""
    arch: str
    """The architecture, as a libseccomp name (``native`` already replaced by the real one)."""
    status: Status
    """Known here, absent here, or unknown everywhere."""
    number: int | None = None
    """The syscall number on ``arch`` (x32 numbers include the 0x40000000 bit); only for KNOWN."""


_TOKENS: dict[str, str] = {
    "x86": "X86", "x86_64": "X86_64", "x32": "X32", "arm": "ARM", "aarch64": "AARCH64",
    "mips": "MIPS", "mipsel": "MIPSEL", "mips64": "MIPS64", "mipsel64": "MIPSEL64",
    "mips64n32": "MIPS64N32", "mipsel64n32": "MIPSEL64N32", "parisc": "PARISC",
    "parisc64": "PARISC64", "ppc": "PPC", "ppc64": "PPC64", "ppc64le": "PPC64LE",
    "s390": "S390", "s390x": "S390X", "riscv64": "RISCV64",
}
"""libseccomp architecture name -> pyseccomp ``Arch`` member."""

ARCHES: tuple[str, ...] = ("native", *_TOKENS)
"""Architecture names a profile may list."""

_OTHER_ABIS: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86", "x32"),
    "aarch64": ("arm",),
    "mips64": ("mips", "mips64n32"),
    "mipsel64": ("mipsel", "mipsel64n32"),
    "parisc64": ("parisc",),
    "ppc64": ("ppc",),
    "s390x": ("s390",),
}
"""Further ABIs a CPU of the key architecture can run (32-bit compat modes, x32)."""


def arch_token(arch: str) -> int:
    """The libseccomp token (an ``AUDIT_ARCH_*`` value) for a libseccomp architecture name."""
    if arch == "native":
        return int(pyseccomp.system_arch())
    member = _TOKENS.get(arch)
    if member is None:
        raise UnknownArch(arch)
    return int(getattr(pyseccomp.Arch, member))


@cache
def native_arch() -> str:
    """The libseccomp name of the architecture this process runs as (``x86_64`` here)."""
    token = int(pyseccomp.system_arch())
    for name, member in _TOKENS.items():
        if int(getattr(pyseccomp.Arch, member)) == token:
            return name
    raise UnknownArch(f"token 0x{token:x}")


def canonical_arch(arch: str) -> str:
    """``native`` -> the real name; any other name checked and returned as is."""
    if arch == "native":
        return native_arch()
    if arch not in _TOKENS:
        raise UnknownArch(arch)
    return arch


def other_abis(native: str | None = None) -> tuple[str, ...]:
    """ABIs other than ``native`` that a CPU of that architecture can enter.

    ``other_abis("x86_64")`` is ``("x86", "x32")``: i386 binaries (``int 0x80``) and x32 numbers
    (``nr | 0x40000000``) reach the kernel through the same CPU; a filter written for x86_64 only
    must kill them, as they are the classic way around a seccomp filter.
    """
    return _OTHER_ABIS.get(canonical_arch(native or "native"), ())


@cache
def lookup(name: str, arch: str = "native") -> Resolution:
    """What libseccomp says about syscall ``name`` on ``arch`` (see :class:`Status`)."""
    real = canonical_arch(arch)
    number = int(pyseccomp.resolve_syscall(arch_token(real), name))
    if number >= 0:
        return Resolution(name, real, Status.KNOWN, number)
    return Resolution(name, real, Status.UNKNOWN if number == -1 else Status.ABSENT)


def resolve(name: str, arch: str = "native") -> int | None:
    """The number of syscall ``name`` on ``arch``; None if it exists on other architectures only.

    Raises :class:`UnknownSyscall` for a name that is a syscall nowhere, and :class:`UnknownArch`
    for an architecture name libseccomp does not know.
    """
    found = lookup(name, arch)
    if found.status is Status.UNKNOWN:
        raise UnknownSyscall(name)
    return found.number


def name_of(number: int, arch: str = "native") -> str | None:
    """The syscall name of ``number`` on ``arch``, None when libseccomp knows none."""
    try:
        raw = pyseccomp.resolve_syscall(arch_token(canonical_arch(arch)), number)
    except ValueError:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@cache
def arch_name(token: int) -> str | None:
    """The libseccomp name of an architecture token (``0xc000003e`` -> ``x86_64``), or None.

    The kernel reports ``AUDIT_ARCH_*`` values; libseccomp's ``x32`` token (0x4000003e) is its own:
    x32 syscalls reach a filter as ``x86_64`` with ``nr | 0x40000000``.
    """
    for name, member in _TOKENS.items():
        if int(getattr(pyseccomp.Arch, member)) == token:
            return name
    return None


_BASES: dict[str, tuple[int, ...]] = {
    "x32": (0x4000_0000,), "mips": (4000,), "mipsel": (4000,), "mips64": (5000,),
    "mipsel64": (5000,), "mips64n32": (6000,), "mipsel64n32": (6000,), "arm": (0, 0x0F_0000)}
"""Where an architecture's syscall numbers start (1024 from each), when not only at 0."""


@cache
def _scanned(arch: str) -> frozenset[int]:
    """The numbers in ``arch``'s ranges (see :data:`_BASES`) libseccomp has a name for."""
    return frozenset(number for base in _BASES.get(arch, (0,))
                     for number in range(base, base + 1024) if name_of(number, arch) is not None)


@cache
def numbers(arch: str = "native") -> tuple[int, ...]:
    """Every syscall number libseccomp knows on ``arch``, ascending.

    x32 numbers carry the 0x40000000 bit, MIPS numbers their ABI's base (4000, 5000, 6000), arm
    includes its private calls (0xf0001 ...). The numbers libseccomp can name on ``arch``, plus
    what every name it knows on any architecture resolves to there (x86's direct socket calls
    359-373 are in the first set only: libseccomp resolves ``socket`` to its socketcall form).
    """
    real = canonical_arch(arch)
    token = arch_token(real)
    out = set(_scanned(real))
    names = {name_of(number, other) for other in _TOKENS for number in _scanned(other)}
    for name in names:
        if name is not None:
            number = int(pyseccomp.resolve_syscall(token, name))
            if number >= 0:
                out.add(number)
    return tuple(sorted(out))


def is_group(name: str) -> bool:
    """True for ``@group`` references."""
    return name.startswith("@")


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Names with every ``@group`` replaced by its members, recursively.

    First-met order is kept and duplicates are dropped:
    ``expand(["read", "@basic-io"])`` starts ``("read", "_llseek", "close", ...)``.
    Raises :class:`UnknownGroup` for a group not in :data:`GROUPS`.
    """
    out: dict[str, None] = {}
    for name in names:
        for member in _expand_one(name, ()):
            out.setdefault(member, None)
    return tuple(out)


def _expand_one(name: str, seen: tuple[str, ...]) -> tuple[str, ...]:
    if not is_group(name):
        return (name,)
    if name not in GROUPS:
        raise UnknownGroup(name)
    if name in seen:  # GROUPS has no cycles; guard the recursion anyway
        return ()
    out: list[str] = []
    for member in GROUPS[name]:
        out.extend(_expand_one(member, (*seen, name)))
    return tuple(out)


# Transcribed from systemd 252 (`systemd-analyze syscall-filter`, src/shared/seccomp-util.c);
# members of each group in systemd's order, nested groups kept as references.
GROUPS: dict[str, tuple[str, ...]] = {
    "@default": (
        "arch_prctl", "brk", "cacheflush", "clock_getres", "clock_getres_time64", "clock_gettime",
        "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "execve", "exit",
        "exit_group", "futex", "futex_time64", "futex_waitv", "get_robust_list", "get_thread_area",
        "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
        "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getrandom", "getresgid",
        "getresgid32", "getresuid", "getresuid32", "getrlimit", "getsid", "gettid", "gettimeofday",
        "getuid", "getuid32", "membarrier", "mmap", "mmap2", "mprotect", "munmap", "nanosleep",
        "pause", "prlimit64", "restart_syscall", "riscv_flush_icache", "riscv_hwprobe", "rseq",
        "rt_sigreturn", "sched_getaffinity", "sched_yield", "set_robust_list", "set_thread_area",
        "set_tid_address", "set_tls", "sigreturn", "time", "ugetrlimit", "uretprobe",
    ),
    "@aio": (
        "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
        "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup",
    ),
    "@basic-io": (
        "_llseek", "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv",
        "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readv", "write", "writev",
    ),
    "@chown": (
        "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
    ),
    "@clock": (
        "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
        "settimeofday",
    ),
    "@cpu-emulation": (
        "modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old",
    ),
    "@debug": (
        "lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "rtas", "s390_runtime_instr",
        "sys_debug_setcontext",
    ),
    "@file-system": (
        "access", "chdir", "chmod", "close", "creat", "faccessat", "faccessat2", "fallocate",
        "fchdir", "fchmod", "fchmodat", "fchmodat2", "fcntl", "fcntl64", "fgetxattr", "flistxattr",
        "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
        "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "lgetxattr",
        "link", "linkat", "listxattr", "llistxattr", "lremovexattr", "lsetxattr", "lstat",
        "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "oldfstat", "oldlstat",
        "oldstat", "open", "openat", "openat2", "readlink", "readlinkat", "removexattr", "rename",
        "renameat", "renameat2", "rmdir", "setxattr", "stat", "stat64", "statfs", "statfs64",
        "statx", "symlink", "symlinkat", "truncate", "truncate64", "unlink", "unlinkat", "utime",
        "utimensat", "utimensat_time64", "utimes",
    ),
    "@io-event": (
        "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll",
        "ppoll_time64", "pselect6", "pselect6_time64", "select",
    ),
    "@ipc": (
        "ipc", "memfd_create", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
        "msgget", "msgrcv", "msgsnd", "pipe", "pipe2", "process_madvise", "process_vm_readv",
        "process_vm_writev", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64",
        "shmat", "shmctl", "shmdt", "shmget",
    ),
    "@keyring": (
        "add_key", "keyctl", "request_key",
    ),
    "@memlock": (
        "mlock", "mlock2", "mlockall", "munlock", "munlockall",
    ),
    "@module": (
        "delete_module", "finit_module", "init_module",
    ),
    "@mount": (
        "chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr",
        "move_mount", "open_tree", "pivot_root", "umount", "umount2",
    ),
    "@network-io": (
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
        "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall", "socketpair",
    ),
    "@obsolete": (
        "_sysctl", "afs_syscall", "bdflush", "break", "create_module", "ftime", "get_kernel_syms",
        "getpmsg", "gtty", "idle", "lock", "mpx", "prof", "profil", "putpmsg", "query_module",
        "security", "sgetmask", "ssetmask", "stime", "stty", "sysfs", "tuxcall", "ulimit",
        "uselib", "ustat", "vserver",
    ),
    "@pkey": (
        "pkey_alloc", "pkey_free", "pkey_mprotect",
    ),
    "@privileged": (
        "@chown", "@clock", "@module", "@raw-io", "@reboot", "@swap", "_sysctl", "acct", "bpf",
        "capset", "chroot", "fanotify_init", "fanotify_mark", "nfsservctl", "open_by_handle_at",
        "pivot_root", "quotactl", "quotactl_fd", "setdomainname", "setfsuid", "setfsuid32",
        "setgroups", "setgroups32", "sethostname", "setresuid", "setresuid32", "setreuid",
        "setreuid32", "setuid", "setuid32", "vhangup",
    ),
    "@process": (
        "capget", "clone", "clone3", "execveat", "fork", "getrusage", "kill", "pidfd_open",
        "pidfd_send_signal", "prctl", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setns",
        "swapcontext", "tgkill", "times", "tkill", "unshare", "vfork", "wait4", "waitid",
        "waitpid",
    ),
    "@raw-io": (
        "ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write",
        "s390_pci_mmio_read", "s390_pci_mmio_write",
    ),
    "@reboot": (
        "kexec_file_load", "kexec_load", "reboot",
    ),
    "@resources": (
        "ioprio_set", "mbind", "migrate_pages", "move_pages", "nice", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "set_mempolicy",
        "set_mempolicy_home_node", "setpriority", "setrlimit",
    ),
    "@setuid": (
        "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
    ),
    "@signal": (
        "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigtimedwait_time64", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4",
        "sigpending", "sigprocmask", "sigsuspend",
    ),
    "@swap": (
        "swapoff", "swapon",
    ),
    "@sync": (
        "fdatasync", "fsync", "msync", "sync", "sync_file_range", "sync_file_range2", "syncfs",
    ),
    "@system-service": (
        "@aio", "@basic-io", "@chown", "@default", "@file-system", "@io-event", "@ipc", "@keyring",
        "@memlock", "@network-io", "@process", "@resources", "@setuid", "@signal", "@sync",
        "@timer", "arm_fadvise64_64", "capget", "capset", "copy_file_range", "fadvise64",
        "fadvise64_64", "flock", "get_mempolicy", "getcpu", "getpriority", "ioctl", "ioprio_get",
        "kcmp", "madvise", "mremap", "name_to_handle_at", "oldolduname", "olduname", "personality",
        "readahead", "readdir", "remap_file_pages", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getattr", "sched_getparam", "sched_getscheduler",
        "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_yield", "sendfile",
        "sendfile64", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setpgid", "setsid",
        "splice", "sysinfo", "tee", "umask", "uname", "userfaultfd", "vmsplice",
    ),
    "@timer": (
        "alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
        "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    ),
}
"""systemd's groups: name -> members (syscall names and nested ``@group`` references)."""

HELP: dict[str, str] = {
    "@default": "System calls that are always permitted",
    "@aio": "Asynchronous IO",
    "@basic-io": "Basic IO",
    "@chown": "Change ownership of files and directories",
    "@clock": "Change the system time",
    "@cpu-emulation": "System calls for CPU emulation functionality",
    "@debug": "Debugging, performance monitoring and tracing functionality",
    "@file-system": "File system operations",
    "@io-event": "Event loop system calls",
    "@ipc": "SysV IPC, POSIX Message Queues or other IPC",
    "@keyring": "Kernel keyring access",
    "@memlock": "Memory locking control",
    "@module": "Loading and unloading of kernel modules",
    "@mount": "Mounting and unmounting of file systems",
    "@network-io": "Network or Unix socket IO, should not be needed if not network facing",
    "@obsolete": "Unusual, obsolete or unimplemented system calls",
    "@pkey": "System calls used for memory protection keys",
    "@privileged": "All system calls which need super-user capabilities",
    "@process": "Process control, execution, namespacing operations",
    "@raw-io": "Raw I/O port access",
    "@reboot": "Reboot and reboot preparation/kexec",
    "@resources": "Alter resource settings",
    "@setuid": "Operations for changing user/group credentials",
    "@signal": "Process signal handling",
    "@swap": "Enable/disable swap devices",
    "@sync": "Synchronize files and memory to storage",
    "@system-service": "General system service operations",
    "@timer": "Schedule operations by time",
}
"""systemd's one-line description of each group."""

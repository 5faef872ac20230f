"""Which CPUs a deep seccomp read must keep off: every CPU any source calls isolated.

:mod:`agent.host.isolation` answers "which CPUs does the host keep for pinned work" as the
kernel applies its settings. Before stopping a process, the question is wider and must fail
closed: could this process be latency-critical? So here every ``isolcpus=`` and ``nohz_full=``
list counts whatever its flags, as do ``/sys/devices/system/cpu/{isolated,nohz_full}``, cgroup v2
partitions in any state but ``member``, and cgroup v1 cpusets taken out of load balancing; and
anything present that cannot be read or parsed makes the answer a :class:`ReadError`, so that
nothing pinned is stopped (:mod:`agent.host.loaded_filters`).

::

    isolated_cpus(read_cmdline(root), read_cgroups(root), root=root)   # frozenset({2, 3, ...})
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.host.cgroups import CgroupNode, CgroupTree, Hierarchy, read_cgroups, read_text
from agent.host.cmdline import KernelCmdline
from agent.host.cpus import ISOLCPUS_FLAGS, format_cpus
from agent.host.facts import ReadError
from agent.host.processes import parse_cpu_list
from agent.host.procfs import read_cmdline, read_sysfs


def isolated_cpus(cmdline: KernelCmdline | ReadError | None,
                  tree: CgroupTree | ReadError | None, *,
                  root: Path = Path("/")) -> frozenset[int] | ReadError:
    """Every CPU that may run latency-critical work, or what could not be read (then nothing
    pinned is stopped).

    Wider on purpose than :func:`agent.host.isolation.host_isolation`, which says what the
    kernel load-balances: here a CPU counts as soon as any source marks it, and a source that is
    present but unreadable or unparsable makes the answer a :class:`ReadError` naming it.

    - ``isolcpus=`` (whatever its flags) and ``nohz_full=``, every occurrence: the kernel runs
      the handler for each, and none simply wins (housekeeping_setup(): the first sets a
      flag's CPUs, a later one naming other CPUs is refused with a warning for the flags
      already set but taken for new ones); lists in the kernel's syntax (:func:`_cpu_list`).
    - ``sys/devices/system/cpu/isolated`` and ``nohz_full`` under ``root``, when present.
    - cgroup2 partitions in any state but ``member``: ``isolated`` ones are not load-balanced,
      ``root`` ones own their CPUs exclusively (a trading service's partition), and an
      ``invalid`` one is still meant to hold pinned work (the kernel revalidates it when CPUs
      come back). Their ``cpuset.cpus`` and ``cpuset.cpus.effective`` both count.
    - cgroup v1 cpusets: when the top cpuset does not load-balance, every CPU of it outside the
      cpusets that do (``cpuset.sched_load_balance``, cgroup-v1/cpusets.rst); and, whatever the
      top does, the CPUs of every ``cpu_exclusive`` cpuset that does not balance.
    """
    problems: list[str] = []
    last = _last_cpu(root)
    cpus = _boot_cpus(cmdline, last, problems)
    for name in ("isolated", "nohz_full"):
        cpus |= _sysfs_cpus(root, name, last, problems)
    if isinstance(tree, CgroupTree):
        for hierarchy in tree.hierarchies:
            if hierarchy.version == 2:
                cpus |= _partition_cpus(root, hierarchy, last, problems)
            elif "cpuset" in hierarchy.controllers:
                cpus |= _cpuset_v1_cpus(root, hierarchy, last, problems)
    else:
        problems.append(f"cgroups: {tree.reason if tree is not None else 'not read'}")
    if problems:
        return ReadError("; ".join(problems))
    return frozenset(cpus)


def refuse_stop(pid: int, *, root: Path = Path("/")) -> str | None:
    """Why process ``pid`` must not be held in ptrace stops (an attach stops it on every
    syscall): a thread of it may run on a CPU :func:`isolated_cpus` names, or that cannot be
    known. None when it may be stopped."""
    isolated = isolated_cpus(read_cmdline(root), read_cgroups(root), root=root)
    if isinstance(isolated, ReadError):
        return f"the host's isolated CPUs are unknown ({isolated.reason})"
    tasks = root / "proc" / str(pid) / "task"
    try:
        tids = sorted(tasks.iterdir())
    except OSError as exc:
        return f"its threads cannot be listed ({exc.strerror or exc})"
    hit: set[int] = set()
    for tid in tids:
        text = read_text(tid / "status")
        if text is None:
            continue  # the thread ended
        found = (None if isinstance(text, ReadError)
                 else re.search(r"^Cpus_allowed_list:\s*(\S+)", text, re.MULTILINE))
        try:
            if found is None:
                raise ValueError
            hit |= parse_cpu_list(found.group(1)) & isolated
        except ValueError:
            return "its CPU affinity cannot be read"
    if hit:
        return f"it may run on isolated CPU(s) {format_cpus(frozenset(hit))}"
    return None


_CPU_CEILING = 1 << 16
"""Past every kernel's CPUs (``NR_CPUS`` is 8192 at most): where ``N`` and ranges stop when the
host's possible CPUs cannot be read."""

_NUMBER = r"(?:N|[0-9]+)"
_REGION = re.compile(
    rf"(?:(?P<all>(?i:all))|(?P<first>{_NUMBER})-(?P<end>{_NUMBER}))"
    rf"(?::(?P<used>{_NUMBER})/(?P<group>{_NUMBER}))?|(?P<one>{_NUMBER})")
"""One region of ``bitmap_parselist()`` (lib/bitmap-str.c): ``5``, ``2-7``, ``all``, with
``:used/group`` after a range; ``N`` stands for the last bit anywhere a number goes."""


class _Unknown(Exception):
    """A cgroup value that is present but cannot be read or parsed (the message names it)."""


def _cpu_list(text: str, last: int) -> frozenset[int]:
    """CPUs of a list in the kernel's syntax, ``N`` being ``last``; ValueError where the kernel
    answers EINVAL or EOVERFLOW.

    ``0-3,8``; ``2-N``; ``all``; ``0-15:1/4`` (the first 1 CPU of every group of 4: 0,4,8,12).
    Regions are separated by commas or white space. A CPU past ``last`` is dropped, where the
    kernel refuses the whole list (ERANGE): no process can run on it, and the rest still counts.
    """
    cpus: set[int] = set()
    for region in re.split(r"[,\s]+", text):
        if region:
            first, end, used, group = _region(region, last)
            for start in range(first, min(end, last) + 1, group):
                cpus.update(range(start, min(start + used - 1, end, last) + 1))
    return frozenset(cpus)


def _region(region: str, last: int) -> tuple[int, int, int, int]:
    """``(first, end, used, group)`` of one region (bitmap_parse_region(), check_region())."""
    match = _REGION.fullmatch(region)
    if match is None:
        raise ValueError(f"bad CPU list region {region!r}")
    numbers = {key: last if value == "N" else int(value)
               for key, value in match.groupdict().items() if value is not None and key != "all"}
    if any(value >= 1 << 32 for value in numbers.values()):  # bitmap_getnum(): an unsigned int
        raise ValueError(f"number out of range in {region!r}")
    if match["all"]:
        first, end = 0, last
    elif "one" in numbers:
        first = end = numbers["one"]
    else:
        first, end = numbers["first"], numbers["end"]
    used, group = numbers.get("used", end + 1), numbers.get("group", end + 1)
    if first > end or group == 0 or used > group:
        raise ValueError(f"bad CPU list region {region!r}")
    return first, end, used, group


def _isolcpus_list(value: str) -> str:
    """The CPU list of ``isolcpus=[flag,]...list``, its flags skipped whatever they are.

    Follows housekeeping_isolcpus_setup() (kernel/sched/isolation.c): leading words are flags,
    unknown ones skipped; one with a character other than a letter or ``_`` makes the kernel
    drop the parameter (here: ValueError). Where the kernel would take ``N`` or ``all`` for a
    flag, they count as CPUs here (the conservative reading).
    """
    rest = value
    while rest[:1].isascii() and rest[:1].isalpha():
        word, _, after = rest.partition(",")
        if word not in ISOLCPUS_FLAGS and _REGION.fullmatch(word):
            break
        if not all(c.isascii() and (c.isalpha() or c == "_") for c in word):
            raise ValueError(f"invalid flag {word!r}")
        rest = after
    return rest


def _last_cpu(root: Path) -> int:
    """The highest possible CPU (nr_cpu_ids - 1: the kernel's ``N``); past it nothing runs.

    Only a bound, so when ``possible`` cannot be read the ceiling stands in (it keeps more).
    """
    for text in read_sysfs(root, "devices/system/cpu/possible").values():
        if isinstance(text, str):
            try:
                return max(_cpu_list(text, _CPU_CEILING - 1), default=_CPU_CEILING - 1)
            except ValueError:
                pass
    return _CPU_CEILING - 1


def _boot_cpus(cmdline: KernelCmdline | ReadError | None, last: int,
               problems: list[str]) -> set[int]:
    """Every CPU any ``isolcpus=`` or ``nohz_full=`` names."""
    if not isinstance(cmdline, KernelCmdline):
        why = cmdline.reason if cmdline is not None else "not read"
        problems.append(f"cannot read the kernel command line: {why}")
        return set()
    cpus: set[int] = set()
    for name in ("isolcpus", "nohz_full"):
        for value in cmdline.values(name):
            if value is None:  # bare `isolcpus`: the kernel's "isolcpus=" handler never sees it
                continue
            try:
                cpus |= _cpu_list(_isolcpus_list(value) if name == "isolcpus" else value, last)
            except ValueError as exc:
                problems.append(f"cannot parse {name}={value!r} on the kernel command line: "
                                f"{exc}")
    return cpus


def _sysfs_cpus(root: Path, name: str, last: int, problems: list[str]) -> set[int]:
    """CPUs in ``sys/devices/system/cpu/<name>``; none when the file is absent."""
    cpus: set[int] = set()
    for text in read_sysfs(root, f"devices/system/cpu/{name}").values():
        if isinstance(text, ReadError):
            problems.append(text.reason)
        elif text.strip() != "(null)":  # nohz_full with none (older kernels print that)
            try:
                cpus |= _cpu_list(text, last)
            except ValueError:
                path = root / "sys" / "devices" / "system" / "cpu" / name
                problems.append(f"cannot parse {path}: {text!r}")
    return cpus


def _partition_cpus(root: Path, hierarchy: Hierarchy, last: int,
                    problems: list[str]) -> set[int]:
    """CPUs of the cgroup2 partitions in any state but ``member``."""
    top = hierarchy.nodes.get(hierarchy.mount_root)
    controllers = top.files.get("cgroup.controllers") if top is not None else None
    if not isinstance(controllers, str) or "cpuset" in controllers.split():
        problems.extend(f"{hierarchy.label}: {error}" for error in hierarchy.errors)
    cpus: set[int] = set()
    for node in hierarchy.nodes.values():
        state = node.files.get("cpuset.cpus.partition")
        if node.path == "/" or state is None:  # the root cgroup spans every CPU: no such file
            continue
        try:
            if isinstance(state, ReadError):
                raise _Unknown(state.reason)
            kind = state.split()[:1]
            if kind == ["member"]:
                continue
            if kind not in (["root"], ["isolated"]):
                path = hierarchy.host_path(node.path, "cpuset.cpus.partition")
                raise _Unknown(f"unknown partition state in {path}: {state!r}")
            for name in ("cpuset.cpus.effective", "cpuset.cpus"):
                cpus |= _cgroup_cpus(root, hierarchy, node, name, last)
        except _Unknown as exc:
            problems.append(str(exc))
    return cpus


def _cpuset_v1_cpus(root: Path, hierarchy: Hierarchy, last: int,
                    problems: list[str]) -> set[int]:
    """CPUs a v1 cpuset hierarchy keeps out of load balancing, or marks exclusive and
    unbalanced."""
    problems.extend(f"{hierarchy.label}: {error}" for error in hierarchy.errors)
    top = hierarchy.nodes.get("/")
    if hierarchy.mount_root != "/":
        problems.append(f"{hierarchy.label}: only {hierarchy.mount_root} is mounted at "
                        f"{hierarchy.mount_point}, so the top cpuset's load balancing is unknown")
        return set()
    if top is None:  # the mount point could not be walked: hierarchy.errors says why
        return set()
    # cpuset.effective_cpus came with Linux 3.17; before, cpuset.cpus is what a cpuset runs on.
    effective = "cpuset.effective_cpus" if "cpuset.effective_cpus" in top.files else None

    def cpus_of(node: CgroupNode, *, narrow: bool = False) -> frozenset[int]:
        """Its CPUs: both lists (or only the effective one for ``narrow``)."""
        names = [effective] if narrow and effective else ["cpuset.cpus", effective]
        return frozenset().union(*(_cgroup_cpus(root, hierarchy, node, name, last)
                                   for name in names if name is not None))

    isolated: set[int] = set()
    balanced: set[int] = set()
    try:
        top_balances = _cgroup_flag(root, hierarchy, top, "cpuset.sched_load_balance")
        everything = cpus_of(top)
    except _Unknown as exc:
        problems.append(str(exc))
        return set()
    for node in hierarchy.nodes.values():
        if node is top:
            continue
        try:
            exclusive = _cgroup_flag(root, hierarchy, node, "cpuset.cpu_exclusive")
            if top_balances and not exclusive:
                continue  # balanced with every CPU by the top cpuset, and not set apart
            balances = _cgroup_flag(root, hierarchy, node, "cpuset.sched_load_balance")
            if balances:
                balanced |= cpus_of(node, narrow=True)  # the fewer, the more stays isolated
            elif exclusive and balances is not None:
                isolated |= cpus_of(node)
        except _Unknown as exc:
            problems.append(str(exc))
    if not top_balances:
        isolated |= everything - balanced
    return isolated


def _cgroup_text(root: Path, hierarchy: Hierarchy, node: CgroupNode, name: str) -> str | None:
    """File ``name`` of ``node`` (read now when the cgroup reader does not keep it); None when
    the cgroup has gone meanwhile. Raises _Unknown when it cannot be read or is missing."""
    value = node.files.get(name)
    directory = root / hierarchy.host_path(node.path).lstrip("/")
    if value is None:
        value = read_text(directory / name)
    if isinstance(value, ReadError):
        raise _Unknown(value.reason)
    if value is None and directory.is_dir():
        raise _Unknown(f"no such file: {hierarchy.host_path(node.path, name)}")
    return value


def _cgroup_flag(root: Path, hierarchy: Hierarchy, node: CgroupNode, name: str) -> bool | None:
    """A ``0``/``1`` cgroup file; None when the cgroup has gone."""
    text = _cgroup_text(root, hierarchy, node, name)
    if text is None:
        return None
    if text.strip() not in ("0", "1"):
        raise _Unknown(f"cannot parse {hierarchy.host_path(node.path, name)}: {text!r}")
    return text.strip() == "1"


def _cgroup_cpus(root: Path, hierarchy: Hierarchy, node: CgroupNode, name: str,
                 last: int) -> frozenset[int]:
    """A CPU list cgroup file (empty: none, or the cgroup has gone)."""
    text = _cgroup_text(root, hierarchy, node, name)
    try:
        return _cpu_list(text, last) if text is not None else frozenset()
    except ValueError:
        path = hierarchy.host_path(node.path, name)
        raise _Unknown(f"cannot parse {path}: {text!r}") from None

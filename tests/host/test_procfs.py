"""Host readers against fixture trees, odd files built in tmp_path, and the live host."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from agent.host.cmdline import KernelCmdline
from agent.host.facts import HostFacts, ReadError
from agent.host.procfs import read_cmdline, read_facts, read_sysctl, read_sysfs
from tests.support import FIXTURES, need

HOSTS = FIXTURES / "hosts"
TRADING = HOSTS / "trading-v2"
MINIMAL = HOSTS / "minimal"
LIVE = Path("/")


def reason(value: object) -> str:
    assert isinstance(value, ReadError), value
    return value.reason


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of trading-v2 for tests that plant odd files."""
    root = tmp_path / "host"
    shutil.copytree(TRADING, root, symlinks=True)
    return root


# --- facts ------------------------------------------------------------------------------------


def test_facts_of_trading_host() -> None:
    assert read_facts(TRADING) == HostFacts(
        hostname="trd-gw-01",
        kernel_release="6.1.0-18-amd64",
        kernel_version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
        boot_id="6f1c1b0e-2c8a-4f5e-9d55-0c3a6d1e7b42",
        machine_id="8f2e4c6a1b3d4e5f9a7c0b1d2e3f4a5b",
        arch="x86_64",
        os_name="Debian GNU/Linux 12 (bookworm)",
    )


def test_facts_of_minimal_host() -> None:
    # Empty machine-id (an image before first boot) is no id; os-release falls back to usr/lib.
    # No kernel.arch and the root is not "/", so the running machine's arch must not leak in.
    assert read_facts(MINIMAL) == HostFacts(
        hostname="unknown",
        kernel_release="5.15.0-105-generic",
        kernel_version=None,
        boot_id=None,
        machine_id=None,
        arch=None,
        os_name="Ubuntu 22.04.4 LTS",
    )


def test_facts_of_an_empty_root(tmp_path: Path) -> None:
    facts = read_facts(tmp_path)
    assert facts.hostname == "unknown"
    assert facts.kernel_release is None
    assert facts.os_name is None


def test_os_release_symlink_out_of_root_is_not_followed(tree: Path) -> None:
    (tree / "etc" / "os-release").unlink()
    (tree / "etc" / "os-release").symlink_to("/etc/os-release")  # the auditing host's file
    (tree / "usr" / "lib").mkdir(parents=True)
    (tree / "usr" / "lib" / "os-release").write_text('PRETTY_NAME="Tree OS 1"\n')
    assert read_facts(tree).os_name == "Tree OS 1"


def test_os_release_relative_symlink_inside_root(tree: Path) -> None:
    (tree / "usr" / "lib").mkdir(parents=True)
    (tree / "etc" / "os-release").rename(tree / "usr" / "lib" / "os-release")
    (tree / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    assert read_facts(tree).os_name == "Debian GNU/Linux 12 (bookworm)"


# --- sysctl -----------------------------------------------------------------------------------


def test_sysctl_dotted_key() -> None:
    assert read_sysctl(TRADING, "kernel.kptr_restrict") == {"kernel.kptr_restrict": "2"}


def test_sysctl_keeps_inner_whitespace() -> None:
    assert read_sysctl(TRADING, "kernel.printk") == {"kernel.printk": "4\t4\t1\t7"}
    assert read_sysctl(TRADING, "net.ipv4.tcp_rmem") == {
        "net.ipv4.tcp_rmem": "4096\t131072\t6291456"
    }


def test_sysctl_strips_only_trailing_newlines(tree: Path) -> None:
    (tree / "proc/sys/kernel/core_pattern").write_text("  core.%p  \n\n")
    assert read_sysctl(tree, "kernel.core_pattern") == {"kernel.core_pattern": "  core.%p  "}
    (tree / "proc/sys/kernel/domainname").write_text("")
    assert read_sysctl(tree, "kernel.domainname") == {"kernel.domainname": ""}


def test_sysctl_slashed_key_with_dotted_component() -> None:
    key = "net/ipv4/conf/eth0.100/rp_filter"
    assert read_sysctl(TRADING, key) == {key: "2"}
    # In dotted form the dot splits the component, so this names eth0/100: not there.
    assert read_sysctl(TRADING, "net.ipv4.conf.eth0.100.rp_filter") == {}


def test_sysctl_glob_mixes_dotted_and_slashed_keys_sorted() -> None:
    assert read_sysctl(TRADING, "net.ipv4.conf.*.rp_filter") == {
        "net.ipv4.conf.all.rp_filter": "1",
        "net.ipv4.conf.default.rp_filter": "1",
        "net.ipv4.conf.eth0.rp_filter": "1",
        "net.ipv4.conf.lo.rp_filter": "0",
        "net/ipv4/conf/eth0.100/rp_filter": "2",
    }
    assert list(read_sysctl(TRADING, "net/ipv4/conf/eth0*/rp_filter")) == [
        "net.ipv4.conf.eth0.rp_filter",
        "net/ipv4/conf/eth0.100/rp_filter",
    ]


def test_sysctl_glob_forms() -> None:
    assert read_sysctl(TRADING, "kernel.*_restrict") == {
        "kernel.dmesg_restrict": "1",
        "kernel.kptr_restrict": "2",
    }
    assert list(read_sysctl(TRADING, "net.ipv4.conf.?o.*")) == ["net.ipv4.conf.lo.rp_filter"]
    assert list(read_sysctl(TRADING, "*.yama.*")) == ["kernel.yama.ptrace_scope"]


def test_sysctl_bracket_is_a_character_class(tree: Path) -> None:
    # Same fnmatch semantics the linter validates (agent.policy.globs).
    found = list(read_sysctl(tree, "net.ipv4.conf.[ad]*.rp_filter"))
    assert found == ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"]


@pytest.mark.parametrize(
    "key",
    [
        "kernel.nope",
        "nope.nope",
        "net.ipv4.conf.*.nope",
        "net.*.conf.eth9.rp_filter",
        "kernel.osrelease.deeper",
        "net/ipv4/conf/eth9/rp_filter",
    ],
)
def test_sysctl_missing_is_empty(key: str) -> None:
    assert read_sysctl(TRADING, key) == {}


def test_sysctl_without_proc_sys_is_empty(tmp_path: Path) -> None:
    assert read_sysctl(tmp_path, "kernel.osrelease") == {}
    assert read_sysctl(tmp_path, "net.ipv4.conf.*.rp_filter") == {}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("../../etc/machine-id", "'..'"),
        ("kernel/../../../etc/machine-id", "'..'"),
        ("..", "'..'"),
        ("kernel..osrelease", "empty"),
        ("kernel.", "empty"),
        ("", "empty"),
        ("./kernel/osrelease", "'.'"),
        ("/etc/machine-id", "absolute"),
        ("/proc/sys/kernel/osrelease", "absolute"),
        ("kernel.os\0release", "NUL"),
    ],
)
def test_sysctl_rejects_escaping_keys(key: str, why: str) -> None:
    result = read_sysctl(TRADING, key)
    assert list(result) == [key]
    assert why in reason(result[key])


def test_sysctl_directory_where_a_value_is_expected() -> None:
    result = read_sysctl(TRADING, "net.ipv4.conf.eth0")
    assert reason(result["net.ipv4.conf.eth0"]) == (
        f"is a directory: {TRADING}/proc/sys/net/ipv4/conf/eth0"
    )
    # A glob that also matches directories reports each of them.
    result = read_sysctl(TRADING, "kernel.r*")
    assert list(result) == ["kernel.random", "kernel.randomize_va_space"]
    assert "is a directory" in reason(result["kernel.random"])
    assert result["kernel.randomize_va_space"] == "2"


def test_sysctl_symlink_out_of_root(tree: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    (tree / "proc/sys/kernel/abs").symlink_to(secret)
    (tree / "proc/sys/kernel/rel").symlink_to("../../../../secret")
    for key in ("kernel.abs", "kernel.rel"):
        assert "resolves outside" in reason(read_sysctl(tree, key)[key])
    # A directory symlink out of the tree is not walked into by a glob either.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "rp_filter").write_text("1\n")
    (tree / "proc/sys/net/ipv4/conf/evil").symlink_to(tmp_path / "elsewhere")
    result = read_sysctl(tree, "net.ipv4.conf.*.rp_filter")
    assert "resolves outside" in reason(result["net.ipv4.conf.evil"])
    assert result["net.ipv4.conf.all.rp_filter"] == "1"


def test_sysctl_symlink_inside_root_is_followed(tree: Path) -> None:
    (tree / "proc/sys/kernel/alias").symlink_to("kptr_restrict")
    assert read_sysctl(tree, "kernel.alias") == {"kernel.alias": "2"}


def test_sysctl_symlink_loop(tree: Path) -> None:
    (tree / "proc/sys/kernel/loop").symlink_to("loop")
    result = read_sysctl(tree, "kernel.loop")
    assert "too many levels of symbolic links" in reason(result["kernel.loop"])


def test_sysctl_fifo_does_not_hang(tree: Path) -> None:
    os.mkfifo(tree / "proc/sys/kernel/fifo")
    assert "not a regular file" in reason(read_sysctl(tree, "kernel.fifo")["kernel.fifo"])


def test_sysctl_oversized_file(tree: Path) -> None:
    (tree / "proc/sys/kernel/huge").write_bytes(b"1" * (2 << 20))
    assert "larger than" in reason(read_sysctl(tree, "kernel.huge")["kernel.huge"])


def test_sysctl_undecodable_bytes(tree: Path) -> None:
    (tree / "proc/sys/kernel/bytes").write_bytes(b"a\xffb\n")
    assert read_sysctl(tree, "kernel.bytes") == {"kernel.bytes": "a\ufffdb"}


def test_sysctl_unlistable_directory_under_glob(tree: Path) -> None:
    # A file where a glob needs to list a directory is just no match.
    assert read_sysctl(tree, "kernel.hostname.*") == {}


# --- sysfs ------------------------------------------------------------------------------------


def test_sysfs_returns_the_raw_choice_list() -> None:
    # Picking the bracketed choice is the check's job; the reader returns the file as written.
    assert read_sysfs(TRADING, "kernel/mm/transparent_hugepage/enabled") == {
        "kernel/mm/transparent_hugepage/enabled": "always madvise [never]"
    }


def test_sysfs_glob() -> None:
    assert read_sysfs(TRADING, "devices/system/cpu/cpu*/cpufreq/scaling_governor") == {
        "devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance",
        "devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance",
        "devices/system/cpu/cpu2/cpufreq/scaling_governor": "powersave",
    }


def test_sysfs_missing_and_rejected() -> None:
    assert read_sysfs(TRADING, "kernel/mm/ksm/run") == {}
    assert read_sysfs(MINIMAL, "kernel/mm/transparent_hugepage/enabled") == {}
    assert "'..'" in reason(read_sysfs(TRADING, "../etc/machine-id")["../etc/machine-id"])
    assert "absolute" in reason(read_sysfs(TRADING, "/sys/kernel")["/sys/kernel"])
    # A dotted sysfs path is a path: no dot splitting.
    assert read_sysfs(TRADING, "kernel.mm") == {}


def test_sysfs_follows_relative_links_inside_sys(tree: Path) -> None:
    device = tree / "sys/devices/virtual/net/eth0"
    device.mkdir(parents=True)
    (device / "mtu").write_text("9000\n")
    (tree / "sys/class/net").mkdir(parents=True)
    (tree / "sys/class/net/eth0").symlink_to("../../devices/virtual/net/eth0")
    assert read_sysfs(tree, "class/net/*/mtu") == {"class/net/eth0/mtu": "9000"}


# --- cmdline ----------------------------------------------------------------------------------


def test_cmdline_of_trading_host() -> None:
    line = read_cmdline(TRADING)
    assert isinstance(line, KernelCmdline)
    assert line.values("isolcpus") == ["managed_irq,domain,2-15"]
    assert line.values("nohz-full") == ["2-15"]
    assert line.values("dyndbg") == ["file drivers/net/ethernet/* +p"]
    assert line.has("quiet")
    assert line.init_args == ("single",)
    assert not line.raw.endswith("\n")


def test_cmdline_missing_or_a_directory(tmp_path: Path) -> None:
    assert "no such file" in reason(read_cmdline(MINIMAL))
    (tmp_path / "proc" / "cmdline").mkdir(parents=True)
    assert "is a directory" in reason(read_cmdline(tmp_path))


# --- the live host (tests run inside a Firecracker VM, as root) -------------------------------


def test_live_facts() -> None:
    facts = read_facts(LIVE)
    assert facts.hostname == socket.gethostname()
    assert facts.kernel_release == os.uname().release
    assert facts.arch == os.uname().machine
    assert facts.boot_id is not None
    assert len(facts.boot_id) == 36


def test_live_sysctl() -> None:
    assert read_sysctl(LIVE, "kernel.osrelease") == {"kernel.osrelease": os.uname().release}
    assert read_sysctl(LIVE, "kernel/osrelease") == {"kernel.osrelease": os.uname().release}


def test_live_glob() -> None:
    found = read_sysctl(LIVE, "net.ipv4.conf.*.rp_filter")
    assert {"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.lo.rp_filter"} <= set(found)
    assert all(isinstance(value, str) and value in {"0", "1", "2"} for value in found.values())


def test_live_cmdline() -> None:
    line = read_cmdline(LIVE)
    assert isinstance(line, KernelCmdline)
    assert line.raw == Path("/proc/cmdline").read_text().rstrip("\n")
    assert line.params or line.init_args


def test_live_unreadable_value() -> None:
    # stable_secret reads as EIO until one is set, even for root: a real kernel ReadError.
    path = Path("/proc/sys/net/ipv6/conf/lo/stable_secret")
    if not path.exists():
        pytest.skip("no IPv6 on this host")
    try:
        path.read_text()
    except OSError:
        pass
    else:
        pytest.skip("a stable_secret is set on this host")
    key = "net.ipv6.conf.lo.stable_secret"
    assert reason(read_sysctl(LIVE, key)[key]) == f"input/output error: {path}"


def test_live_permission_denied_even_for_root() -> None:
    # Write-only sysctls (mode 0200) refuse reads to root as well: proc's own permission check.
    path = Path("/proc/sys/vm/drop_caches")
    need(path.exists(), "no /proc/sys/vm/drop_caches")
    result = read_sysctl(LIVE, "vm.drop_caches")
    assert reason(result["vm.drop_caches"]) == f"permission denied: {path}"
    found = read_sysctl(LIVE, "vm.*")
    assert isinstance(found["vm.drop_caches"], ReadError)
    assert isinstance(found["vm.swappiness"], str)

"""The module reader against kmod itself: ``lsmod``, ``modprobe --showconfig``, ``modprobe -n``
and ``modprobe -D`` on the live host and on fixture trees (this machine's kernel has no module
support, so the configuration and built-in parts are checked on trees kmod reads too)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from agent.host.facts import ReadError
from agent.host.kmod import CONFIG_DIRS, ModprobeRule, read_config, read_modules
from tests.support import FIXTURES, need_tool

TREE = FIXTURES / "hosts" / "kmod-debian"


def _modprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("modprobe"), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def _config_args(root: Path) -> list[str]:
    # -C per folder in kmod's default order: kmod merges them as it merges its defaults.
    return [arg for folder in CONFIG_DIRS for arg in ("-C", str(root / folder))]


def _showconfig(root: Path) -> list[str]:
    done = _modprobe("--showconfig", *_config_args(root))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n# End of configuration files", 1)[0].splitlines()
    return [" ".join(line.split()) for line in lines if line.split()[:1] in (["install"],
                                                                             ["blacklist"])]


def _ours(rules: tuple[ModprobeRule, ...] | ReadError) -> list[str]:
    assert not isinstance(rules, ReadError), rules
    # showconfig prints every blacklist line, then every install line, each in file order.
    ordered = sorted(rules, key=lambda r: r.command != "blacklist")
    return [" ".join(f"{r.command} {r.module} {r.argument}".split()) for r in ordered]


def test_live_loaded_modules_are_what_lsmod_lists() -> None:
    lsmod = need_tool("lsmod")
    found = read_modules(Path("/"))
    done = subprocess.run([lsmod], capture_output=True, text=True, timeout=60, check=False)
    if not os.path.exists("/proc/modules"):
        # A kernel without module support: lsmod has nothing to read either.
        assert found.support is False and found.loaded == frozenset()
        assert done.returncode != 0 and "/proc/modules" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    assert found.support is True
    assert found.loaded == frozenset(line.split()[0] for line in done.stdout.splitlines()[1:])


def test_fixture_tree() -> None:
    found = read_modules(TREE)
    assert found.support is True
    assert found.loaded == frozenset({"cramfs", "nf_tables", "ext4", "mbcache"})
    assert found.builtin == frozenset({"squashfs", "usb_storage", "crc32c_generic"})
    assert found.builtin_file == str(TREE / "lib/modules/6.1.0-18-amd64/modules.builtin")
    # /lib/modprobe.d/cis.conf is hidden by /etc/modprobe.d/cis.conf; README is no *.conf.
    assert found.config_files == tuple(str(TREE / f) for f in (
        "run/modprobe.d/00-early.conf", "usr/lib/modprobe.d/50-dist.conf",
        "etc/modprobe.d/cis.conf"))
    assert not isinstance(found.rules, ReadError)
    assert ModprobeRule("install", "freevxfs", "/bin/false",
                        str(TREE / "etc/modprobe.d/cis.conf"), 6) in found.rules


def test_merged_configuration_is_what_modprobe_shows() -> None:
    assert _ours(read_config(TREE)[1]) == _showconfig(TREE)


def test_the_install_modprobe_runs_is_the_first_one(tmp_path: Path) -> None:
    # modprobe -n -v prints the install command it would run: the precedence oracle.
    (tmp_path / "lib" / "modules" / os.uname().release).mkdir(parents=True)
    (tmp_path / "lib" / "modules" / os.uname().release / "modules.dep").touch()
    _, rules = read_config(TREE)
    assert not isinstance(rules, ReadError)
    for module in ("rds", "cramfs", "udf", "sctp", "hfsplus", "freevxfs"):
        first = next(r for r in rules if r.command == "install" and r.module == module)
        done = _modprobe("-n", "-v", "-d", str(tmp_path), *_config_args(TREE), module)
        assert done.returncode == 0, done.stderr
        assert " ".join(done.stdout.split()) == " ".join(f"install {first.argument}".split())


@pytest.mark.parametrize("seed", range(8))
def test_random_configurations_merge_as_kmod_merges_them(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    names = ["00-a.conf", "10-b.conf", "cis.conf", "z.conf", "x.txt"]
    modules = ["cramfs", "usb-storage", "udf", "dccp"]
    for folder in CONFIG_DIRS:
        (tmp_path / folder).mkdir(parents=True)
        for name in rng.sample(names, rng.randint(0, 3)):
            lines = []
            for _ in range(rng.randint(0, 4)):
                module = rng.choice(modules)
                lines.append(rng.choice([f"install {module} /bin/false", f"blacklist {module}",
                                         f"install {module} /bin/true  # {folder}",
                                         f"# blacklist {module}", "", f"alias x-{module} udf"]))
            (tmp_path / folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _ours(read_config(tmp_path)[1]) == _showconfig(tmp_path)


def test_builtin_names_are_what_modprobe_resolves(tmp_path: Path) -> None:
    release = "6.1.0-18-amd64"
    modules = tmp_path / "lib" / "modules" / release
    modules.mkdir(parents=True)
    (modules / "modules.builtin").write_bytes(
        (TREE / "lib/modules" / release / "modules.builtin").read_bytes())
    subprocess.run([need_tool("depmod"), "-b", str(tmp_path), release], capture_output=True,
                   timeout=60, check=True)
    (tmp_path / "proc" / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "kernel" / "osrelease").write_text(release + "\n")
    found = read_modules(tmp_path)
    assert not isinstance(found.builtin, ReadError)
    for name in ("squashfs", "usb-storage", "crc32c_generic", "cramfs"):
        done = _modprobe("-D", "-d", str(tmp_path), "-S", release, "-C", "/dev/null", name)
        said = done.stdout.split()
        assert (said[:1] == ["builtin"]) == (name.replace("-", "_") in found.builtin), name
        if said[:1] == ["builtin"]:
            assert said[1] in found.builtin


def test_no_module_support_and_missing_builtin(tmp_path: Path) -> None:
    found = read_modules(tmp_path)
    assert found.support is False and found.loaded == frozenset()
    assert isinstance(found.builtin, ReadError)
    assert found.rules == () and found.config_files == ()


def test_unreadable_configuration_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "modprobe.d"
    folder.mkdir(parents=True)
    (folder / "x.conf").write_text("blacklist cramfs\n")
    (folder / "y.conf").mkdir()  # a *.conf kmod cannot read either
    files, rules = read_config(tmp_path)
    assert isinstance(rules, ReadError) and "is a directory" in rules.reason
    assert files == (str(folder / "x.conf"), str(folder / "y.conf"))


def test_a_link_out_of_the_root_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "modprobe.d"
    folder.mkdir(parents=True)
    (folder / "x.conf").symlink_to("/etc/hostname")
    _, rules = read_config(tmp_path)
    assert isinstance(rules, ReadError) and "resolves outside" in rules.reason

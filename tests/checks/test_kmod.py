"""``kmod`` checks: loaded and built-in modules, modprobe.d disabling, modules_disabled, and a
kernel without module support; over the fixture tree read by the real reader, and the live
host through the command line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.kmod import KmodKind, KmodSpec
from agent.host.facts import ReadError
from agent.host.snapshot import Snapshot, SnapshotRequest, take
from agent.result import Status
from tests.authoring import check, policy, write
from tests.support import FIXTURES, run_cli

KIND = KmodKind()
TREE = FIXTURES / "hosts" / "kmod-debian"


def judge(raw: dict[str, Any], root: Path = TREE) -> tuple[Status, str, list[dict[str, Any]]]:
    spec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, take(root, KIND.request(spec)))
    return outcome.status, outcome.message, [dict(r) for r in outcome.evidence.items]


def test_registered_and_request() -> None:
    assert isinstance(KINDS["kmod"], KmodKind)
    spec = KIND.parse({"not_loaded": ["usb-storage"]})
    assert spec == KmodSpec(("usb_storage",), (), "any", False)
    assert KIND.request(spec) == SnapshotRequest(modules=True,
                                                 sysctl=frozenset({"kernel.modules_disabled"}))


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ({"disabled_by": "install"}, ["disabled_by without disabled",
                                      "kmod check expects nothing: give not_loaded, disabled "
                                      "or loading_disabled"]),
        ({"not_loaded": ["usb-storage", "usb_storage"]},
         ["module 'usb_storage' is listed twice ('-' and '_' are the same to kmod)"]),
        ({"disabled": ["cram fs"]}, ["invalid module name 'cram fs'"]),
    ],
)
def test_spec_problems(raw: dict[str, Any], problems: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [p.message for p in caught.value.problems] == problems


def test_not_loaded() -> None:
    status, message, rows = judge({"not_loaded": ["cramfs", "usb-storage", "dccp"]})
    assert status is Status.FAIL
    builtin = TREE / "lib/modules/6.1.0-18-amd64/modules.builtin"
    assert message == (f"cramfs: loaded (/proc/modules); usb_storage: built into the kernel "
                       f"({builtin})")
    assert [r["verdict"] for r in rows] == ["fail", "fail", "pass"]
    assert judge({"not_loaded": ["dccp", "udf"]})[0] is Status.PASS


@pytest.mark.parametrize(
    ("module", "by", "status", "found"),
    [
        ("cramfs", "any", Status.PASS, "install /bin/false ({cis}:2); blacklist ({cis}:3)"),
        ("cramfs", "both", Status.PASS, "install /bin/false ({cis}:2); blacklist ({cis}:3)"),
        ("usb-storage", "any", Status.PASS, "blacklist ({cis}:5)"),
        ("usb-storage", "install", Status.FAIL, "blacklist ({cis}:5)"),
        ("udf", "install", Status.PASS, "install /bin/true ({cis}:4)"),
        ("udf", "both", Status.FAIL, "install /bin/true ({cis}:4)"),
        ("freevxfs", "install", Status.PASS, "install /bin/false ({cis}:6)"),
        # the first install line runs: /run's 00-early.conf comes before 50-dist.conf
        ("rds", "any", Status.FAIL, "install /usr/bin/logger rds ({early}:1); that install "
         "command does not refuse the load"),
        ("jffs2", "any", Status.FAIL, "install /bin/false; /sbin/modprobe --ignore-install "
         "jffs2 ({cis}:9); that install command does not refuse the load"),
        # hidden by /etc/modprobe.d/cis.conf; README is not a *.conf file
        ("dccp", "any", Status.FAIL, "no install or blacklist line in modprobe.d"),
        ("tipc", "any", Status.FAIL, "no install or blacklist line in modprobe.d"),
    ],
)
def test_disabled(module: str, by: str, status: Status, found: str) -> None:
    got, _, rows = judge({"disabled": [module], "disabled_by": by})
    cis, early = TREE / "etc/modprobe.d/cis.conf", TREE / "run/modprobe.d/00-early.conf"
    finding = f"{module.replace('-', '_')}: " + found.format(cis=cis, early=early)
    assert (got, rows[0]["finding"]) == (status, finding)


def _copy(tmp_path: Path, modules_disabled: str | None) -> Path:
    root = tmp_path / "root"
    shutil.copytree(TREE, root, symlinks=True)
    target = root / "proc/sys/kernel/modules_disabled"
    if modules_disabled is None:
        target.unlink()
    else:
        target.write_text(modules_disabled + "\n")
    return root


def test_modules_disabled(tmp_path: Path) -> None:
    assert judge({"loading_disabled": True})[:2] == (Status.FAIL, "kernel.modules_disabled = 0")
    root = _copy(tmp_path, "1")
    status, _, rows = judge({"loading_disabled": True, "disabled": ["dccp"]}, root)
    assert status is Status.PASS
    assert rows[0]["finding"] == "dccp: kernel.modules_disabled = 1: no module can be loaded"
    # a module already loaded stays loaded
    assert judge({"not_loaded": ["cramfs"]}, root)[0] is Status.FAIL


def test_missing_switch_with_module_support_is_an_error(tmp_path: Path) -> None:
    status, message, _ = judge({"loading_disabled": True}, _copy(tmp_path, None))
    assert status is Status.ERROR
    assert "kernel.modules_disabled does not exist" in message


def test_no_module_support_passes_with_that_as_evidence(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    status, _, rows = judge({"not_loaded": ["cramfs"], "disabled": ["cramfs"],
                             "loading_disabled": True}, tmp_path)
    assert status is Status.PASS
    assert [r["finding"] for r in rows] == [f"{prefix}the kernel has no module support (no "
                                            "/proc/modules): it loads no module"
                                            for prefix in ("cramfs: ", "cramfs: ", "")]


def test_no_module_support_still_fails_a_module_built_in(tmp_path: Path) -> None:
    # A monolithic kernel loads no module, but what it has built in runs all the same.
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.1.0-mono\n")
    builtin = tmp_path / "lib/modules/6.1.0-mono/modules.builtin"
    builtin.parent.mkdir(parents=True)
    builtin.write_text("kernel/net/sctp/sctp.ko\n")
    status, _, rows = judge({"not_loaded": ["sctp", "dccp"], "disabled": ["sctp"]}, tmp_path)
    assert status is Status.FAIL
    assert [(r["verdict"], r["finding"]) for r in rows] == [
        ("fail", f"sctp: built into the kernel ({builtin})"),
        ("pass", "dccp: the kernel has no module support (no /proc/modules): it loads no module"),
        ("pass", "sctp: the kernel has no module support (no /proc/modules): it loads no module")]


def test_unreadable_parts_are_errors(tmp_path: Path) -> None:
    root = _copy(tmp_path, "0")
    (root / "lib/modules/6.1.0-18-amd64/modules.builtin").unlink()
    status, message, _ = judge({"not_loaded": ["dccp"]}, root)
    assert status is Status.ERROR
    assert "built-in modules are unknown: no such file" in message
    # loaded is decided without the built-in list
    assert judge({"not_loaded": ["cramfs"]}, root)[0] is Status.FAIL
    (root / "etc/modprobe.d/cis.conf").unlink()
    (root / "etc/modprobe.d/cis.conf").mkdir()
    status, message, _ = judge({"disabled": ["cramfs"]}, root)
    assert status is Status.ERROR and "is a directory" in message


def test_not_read_is_an_error() -> None:
    spec = KIND.parse({"not_loaded": ["cramfs"]})
    bare = Snapshot(root="/x", facts=take(TREE, SnapshotRequest()).facts)
    assert KIND.evaluate(spec, bare).status is Status.ERROR
    assert isinstance(take(TREE, SnapshotRequest()).modules, type(None))
    assert not isinstance(take(TREE, KIND.request(spec)).modules, ReadError)


def test_audit_live_and_fixture(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("mods", [
        check("MOD-1", "kmod", {"not_loaded": ["cramfs"], "disabled": ["cramfs"]})]))
    done = run_cli("audit", "--policy", str(path), "--root", str(TREE), "--format", "json")
    (result,) = json.loads(done.stdout)["results"]
    assert (done.returncode, result["status"]) == (1, "fail")
    live = run_cli("audit", "--policy", str(path), "--format", "json")
    (result,) = json.loads(live.stdout)["results"]
    if not os.path.exists("/proc/modules"):  # this machine: a kernel without modules
        assert (live.returncode, result["status"]) == (0, "pass")
        assert "no module support" in result["evidence"]["actual"]
    else:
        assert result["status"] in ("pass", "fail")

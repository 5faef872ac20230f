"""``hostguard audit`` through real subprocesses: exit codes, outputs, files, hostile host data."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent.core import shipped
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.support import PROJECT, run_cli

TODAY = "2026-06-01"
SUMMARY = re.compile(
    r"hostguard audit of (?P<host>.*) \(kernel (?P<kernel>.*)\) at "
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: (?P<total>\d+) checks, (?P<counts>.*?)"
    r"(?:, score (?P<score>\d+\.\d)%)? \[\d+ ms, policy [0-9a-f]{12}\]"
)
TOP_KEYS = ["schema", "tool", "host", "policy", "started", "duration_ms", "summary", "results"]

PASSING = [sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
           check("LAT-010", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                                      "value": "never"})]
FAILING = [*PASSING, sysctl("LAT-001", "vm.swappiness", "eq", 10, )]
ERRORING = [*PASSING, sysctl("KRN-009", "kernel.sysrq", "eq", 0)]


def audit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("audit", "--today", TODAY, *args, cwd=cwd)


def summary_of(stdout: str) -> re.Match[str]:
    last = stdout.splitlines()[-1]
    match = SUMMARY.fullmatch(last)
    assert match, last
    return match


# --- audit exit codes --------------------------------------------------------------------------


def test_audit_compliant(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.count("\n") == 1  # nothing but the summary when all pass
    match = summary_of(done.stdout)
    assert match["host"] == "trd-gw-01"
    assert match["kernel"] == "6.1.0-18-amd64"
    assert (match["total"], match["counts"]) == ("2", "2 pass")


def test_audit_verbose_lists_passing_checks(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "-v")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["PASS", "high", "KRN-001", "check", "KRN-001"]
    assert lines[1].strip().startswith("kernel.kptr_restrict >= 1 holds  (")


def test_audit_failure(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("bad", FAILING))
    done = audit("--policy", "p.yaml", "--root", str(TRADING_ROOT), cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, "")
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["FAIL", "high", "LAT-001", "check", "LAT-001"]
    line = next(i for i, t in enumerate(path.read_text().splitlines()) if '"LAT-001"' in t)
    # the location is the check's mapping, which starts one line before its "id"
    assert lines[1].strip() == (f"expected vm.swappiness == 10, found vm.swappiness = 1  "
                                f"(p.yaml:{line}:5)")
    assert summary_of(done.stdout)["counts"] == "2 pass, 1 fail"


def test_audit_only_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("err", ERRORING))
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT))
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout.splitlines()[0].split()[:3] == ["ERROR", "high", "KRN-009"]
    assert "kernel.sysrq does not exist on this host" in done.stdout.splitlines()[1]
    assert summary_of(done.stdout)["counts"] == "2 pass, 1 error"


def test_audit_failure_beats_error(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("both", [*FAILING, ERRORING[-1]]))
    assert audit("--policy", str(path), "--root", str(TRADING_ROOT)).returncode == 1


def test_audit_of_a_folder_of_policies(tmp_path: Path) -> None:
    write(tmp_path / "policies" / "a.yaml", policy("a", PASSING))
    write(tmp_path / "policies" / "sub" / "b.yml", policy("b", [ERRORING[-1]]))
    (tmp_path / "policies" / "notes.txt").write_text("not a policy")
    done = audit("--policy", str(tmp_path / "policies"), "--root", str(TRADING_ROOT))
    assert done.returncode == 3
    assert summary_of(done.stdout)["total"] == "3"


# --- usage errors (exit 2) ---------------------------------------------------------------------

BAD_POLICY = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: bad}
checks:
  - id: KRN-001
    kind: sysctl
    title: kernel pointers hidden
    severity: high
    rationale: r
    remediation: x
    spec: {key: kernel.kptr_restrict, op: ge, value: high}
"""


def test_invalid_policy_is_located_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY)
    report = tmp_path / "out" / "report.json"
    done = audit("--policy", "bad.yaml", "--root", str(TRADING_ROOT), "--output", str(report),
                 cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    col = BAD_POLICY.splitlines()[10].index("high") + 1
    assert done.stderr.splitlines() == [
        f"bad.yaml:11:{col}: error: op 'ge' needs an integer value [spec]",
        "hostguard: invalid policy, nothing audited",
    ]
    assert not report.exists()
    assert not report.parent.exists()


def test_schema_error_is_located(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY.replace("severity: high", "severity: hgih"))
    done = audit("--policy", "bad.yaml", "--root", str(TRADING_ROOT), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "bad.yaml:8:15: error: checks[0].severity must be one of critical, high, medium, low, "
        "info, not 'hgih' (did you mean 'high'?) [schema]")


def test_missing_policy_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = audit("--policy", str(missing), "--root", str(TRADING_ROOT))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"hostguard: {missing}: No such file or directory\n"


def test_without_policy_the_system_or_the_shipped_policies_are_audited(tmp_path: Path) -> None:
    # From a folder with no policies/ in it: the policies come from /etc/hostguard/policies
    # (none on a test machine, normally) or from hostguard itself, and stderr says which.
    done = audit("--root", str(TRADING_ROOT), "--format", "json", cwd=tmp_path)
    assert done.returncode in (0, 1, 3), done.stderr
    system = shipped.SYSTEM_POLICIES
    used = system if system.is_dir() else shipped.policies()
    first = done.stderr.splitlines()[0]
    if used == system:
        assert first == f"hostguard: no --policy given: auditing with {system}"
    else:
        assert first == (f"hostguard: no --policy given and no {system}: auditing with the "
                         f"policies shipped with hostguard ({used})")
    files = {f["path"] for f in json.loads(done.stdout)["policy"]["files"]}
    assert str(used / "trading-baseline.yaml") in files


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_root_must_be_a_folder(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    root = tmp_path / "root"
    if kind == "file":
        root.write_text("")
    done = audit("--policy", str(path), "--root", str(root))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"hostguard: --root {root}: not a folder\n"


@pytest.mark.parametrize("label", ["role", "=gw", ""])
def test_bad_label(tmp_path: Path, label: str) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--label", label)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"argument --label: labels are KEY=VALUE, not {label!r}" in done.stderr


def test_labels_select_policies(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("gw", FAILING, hosts={"labels": {"role": "gw"}}))
    selected = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--label", "role=gw")
    assert selected.returncode == 1
    other = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--label", "role=md",
                  "--label", "site=ld4")
    assert other.returncode == 5  # nothing evaluated is not compliant
    assert summary_of(other.stdout)["counts"] == "3 not_applicable"


def test_bad_today() -> None:
    done = run_cli("audit", "--policy", "x", "--today", "31/12/2026")
    assert done.returncode == 2
    assert "not a date (YYYY-MM-DD): '31/12/2026'" in done.stderr


# --- outputs -----------------------------------------------------------------------------------


def test_output_file_is_written_atomically(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("bad", FAILING))
    report = tmp_path / "reports" / "audit.json"
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--format", "json",
                 "--output", str(report))
    assert (done.returncode, done.stderr) == (1, "")
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    data = json.loads(report.read_text(encoding="utf-8"))
    assert list(data) == TOP_KEYS
    assert data["summary"]["fail"] == 1
    # stdout: the text summary and where the report went, never the JSON itself
    lines = done.stdout.splitlines()
    assert lines[-1] == f"wrote {report}"
    assert summary_of("\n".join(lines[:-1]))["counts"] == "2 pass, 1 fail"
    assert lines[0].split()[:3] == ["FAIL", "high", "LAT-001"]
    assert os.listdir(report.parent) == ["audit.json"]  # no temporary file left behind


def test_output_replaces_an_existing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    report = tmp_path / "audit.txt"
    report.write_text("old report\n")
    report.chmod(0o644)
    before = report.stat().st_ino
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--output", str(report))
    assert done.returncode == 0
    assert report.stat().st_ino != before  # renamed into place, not rewritten in place
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    text = report.read_text()
    assert summary_of(text)["counts"] == "2 pass"
    assert sorted(os.listdir(tmp_path)) == ["audit.txt", "p.yaml"]


def test_output_to_an_unwritable_place(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--output",
                 str(blocker / "report.json"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"hostguard: cannot write {blocker / 'report.json'}: ")


def test_json_on_stdout(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("err", ERRORING))
    done = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--format", "json",
                 "--label", "role=gw")
    assert (done.returncode, done.stderr) == (3, "")
    data: dict[str, Any] = json.loads(done.stdout)
    assert list(data) == TOP_KEYS
    assert data["schema"] == "hostguard/result/v1"
    assert data["tool"] == {"name": "hostguard", "version": __version__}
    assert data["host"]["hostname"] == "trd-gw-01"
    assert data["host"]["root"] == str(TRADING_ROOT)
    assert data["host"]["labels"] == {"role": "gw"}
    assert re.fullmatch("[0-9a-f]{64}", data["policy"]["digest"])
    assert [f["name"] for f in data["policy"]["files"]] == ["err"]
    assert data["summary"] == {"total": 3, "pass": 2, "fail": 0, "error": 1, "waived": 0,
                               "not_applicable": 0, "failed_by_severity": {}}
    assert [(r["id"], r["status"]) for r in data["results"]] == [
        ("KRN-001", "pass"), ("LAT-010", "pass"), ("KRN-009", "error")]


# --- hostile host data -------------------------------------------------------------------------


def hostile_root(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    kernel = root / "proc" / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "hostname").write_bytes(b"trd-\x1b[31mevil\nFAKE: all checks pass\n")
    (kernel / "osrelease").write_bytes(b"6.1\x1b]0;owned\x07\n")
    (kernel / "kptr_restrict").write_bytes(b"0\x1b[2J\n")
    (root / "proc" / "cmdline").write_bytes(b"quiet evil=\x1b[2Jgone\n")
    return root


def test_hostile_host_data_is_not_printed_raw(tmp_path: Path) -> None:
    root = hostile_root(tmp_path)
    path = write(tmp_path / "p.yaml", policy("x", [
        sysctl("KRN-001", "kernel.kptr_restrict", "eq", 2),
        check("BOOT-1", "kernel_cmdline", {"absent": ["evil"]}),
    ]))
    done = audit("--policy", str(path), "--root", str(root), "-v")
    assert done.returncode == 1
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert not any(line.startswith("FAKE") for line in done.stdout.splitlines())
    match = summary_of(done.stdout)
    assert match["host"] == r"trd-\x1b[31mevil\nFAKE: all checks pass"
    assert match["kernel"] == r"6.1\x1b]0;owned\x07"
    assert r"evil=\x1b[2Jgone is set" in done.stdout
    as_json = audit("--policy", str(path), "--root", str(root), "--format", "json")
    assert "\x1b" not in as_json.stdout
    data = json.loads(as_json.stdout)
    assert data["host"]["hostname"] == "trd-\x1b[31mevil\nFAKE: all checks pass"


def test_expired_waiver_fails_lint_but_the_audit_still_runs_without_it(tmp_path: Path) -> None:
    waiver = {"check": "LAT-001", "reason": "tuning ticket OPS-1", "expires": "2026-11-30"}
    path = write(tmp_path / "p.yaml", policy("w", FAILING, waivers=[waiver]))
    before = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--today", "2026-11-24")
    assert (before.returncode, before.stderr) == (0, "")
    assert summary_of(before.stdout)["counts"] == "2 pass, 1 waived"
    lint = run_cli("lint", "--today", "2026-12-01", str(path))
    assert lint.returncode == 1 and "[waiver-expired]" in lint.stdout
    after = audit("--policy", str(path), "--root", str(TRADING_ROOT), "--today", "2026-12-01")
    assert after.returncode == 1
    assert "waiver for 'LAT-001' expired on 2026-11-30 [waiver-expired] (audited without it)" \
        in after.stderr
    assert "(waiver expired on 2026-11-30)" in after.stdout
    assert summary_of(after.stdout)["counts"] == "2 pass, 1 fail"


# --- nothing evaluated -------------------------------------------------------------------------


def test_an_audit_in_which_no_check_applied_says_so_and_exits_5(tmp_path: Path) -> None:
    # The shipped gateway policy selects hosts labelled role=gateway; audited without the label
    # not one check applies, which must not read as compliant.
    shipped_policy = "policies/gateway-process.yaml"  # as a user types it, from the checkout
    done = audit("--policy", shipped_policy, "--root", str(TRADING_ROOT), cwd=PROJECT)
    assert done.returncode == 5, done.stdout + done.stderr
    *_, loud, _ = done.stdout.splitlines()
    total = summary_of(done.stdout)["total"]
    assert summary_of(done.stdout)["counts"] == f"{total} not_applicable"
    assert loud == (
        f"NOT EVALUATED: none of the {total} checks applies to this host, nothing was checked "
        "and this is not a compliant result: policy 'trading-gateway-process' "
        "(policies/gateway-process.yaml:14:1) does not select host 'trd-gw-01': it needs label "
        f"role=gateway, the host has no label 'role' ({total} checks)")
    as_json = audit("--policy", shipped_policy, "--root", str(TRADING_ROOT), "--format",
                    "json", cwd=PROJECT)
    assert as_json.returncode == 5
    assert json.loads(as_json.stdout)["summary"]["not_applicable"] == int(total)
    assert as_json.stderr == f"hostguard: {loud}\n"
    # With the label the checks apply: whatever they find, the run was evaluated.
    labelled = audit("--policy", shipped_policy, "--root", str(TRADING_ROOT), "--label",
                     "role=gateway", cwd=PROJECT)
    assert labelled.returncode in (0, 1, 3), labelled.stderr
    assert "NOT EVALUATED" not in labelled.stdout


def test_a_run_where_most_checks_did_not_apply_says_how_many_and_why(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    staging = write(tmp_path / "staging.yaml", policy(
        "staging", [sysctl("STG-001", "kernel.kptr_restrict", "eq", 0),
                    sysctl("STG-002", "vm.swappiness", "eq", 0),
                    sysctl("STG-003", "kernel.sysrq", "eq", 0, missing="not_applicable")],
        hosts={"hostnames": ["stg-*"]}))
    done = audit("--policy", str(path), str(staging), "--root", str(TRADING_ROOT))
    assert done.returncode == 0, done.stderr  # two passed: compliant, but say the rest
    *_, line, _ = done.stdout.splitlines()
    assert summary_of(done.stdout)["counts"] == "2 pass, 3 not_applicable"
    assert line == (
        f"3 of 5 checks not applicable: policy 'staging' ({staging}:8:3) does not select host "
        "'trd-gw-01': hostname 'trd-gw-01' matches none of stg-* (3 checks)")
    # Half or fewer: no line.
    fewer = audit("--policy", str(path), str(write(tmp_path / "one.yaml", policy(
        "one", [sysctl("ONE-001", "vm.swappiness", "eq", 0)], hosts={"hostnames": ["stg-*"]}))),
        "--root", str(TRADING_ROOT))
    assert fewer.returncode == 0
    assert "not applicable:" not in fewer.stdout

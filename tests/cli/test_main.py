"""The command line through real subprocesses: exit codes, outputs, files, hostile host data."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from agent import __version__, cli
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.support import PROJECT, need, run_cli

TODAY = "2026-06-01"
SUMMARY = re.compile(
    r"hostguard audit of (?P<host>.*) \(kernel (?P<kernel>.*)\) at "
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: (?P<total>\d+) checks, (?P<counts>.*) "
    r"\[\d+ ms, policy [0-9a-f]{12}\]"
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


def test_version() -> None:
    done = run_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"hostguard {__version__}\n", "")


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "hostguard"
    need(script.is_file(), f"no hostguard console script beside {sys.executable} "
                           "(the venv was not built from pyproject.toml)")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout) == (0, f"hostguard {__version__}\n")
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = subprocess.run([str(script), "audit", "--policy", str(path), "--root",
                           str(TRADING_ROOT)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
"""The environment with stdout block-buffered on a pipe, as it usually is."""


def test_a_one_shot_command_ends_without_teardown_and_loses_no_output(tmp_path: Path) -> None:
    # An atexit hook shows whether the interpreter's exit ran; the output is a JSON report
    # left in stdout's buffer until the end.
    path = write(tmp_path / "p.yaml", policy("err", ERRORING))
    code = ("import atexit, os, sys\n"
            "atexit.register(lambda: os.write(2, b'teardown'))\n"
            "from agent.cli import run\n"
            "sys.argv = ['hostguard', *sys.argv[1:]]\n"
            "run()\n")
    for args, teardown in ((["audit", "--policy", str(path), "--root", str(TRADING_ROOT),
                             "--format", "json", "--today", TODAY], False),
                           (["--version"], True)):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=60, check=False,
                              env={**BUFFERED, "PYTHONPATH": str(PROJECT)})
        assert ("teardown" in done.stderr) == teardown
        if not teardown:
            assert done.returncode == 3
            assert json.loads(done.stdout)["summary"]["total"] == 3


@pytest.mark.parametrize("buffered", [True, False])
def test_a_closed_stdout_exits_1_without_a_traceback(tmp_path: Path, buffered: bool) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads
    env = {**(BUFFERED if buffered else {**os.environ, "PYTHONUNBUFFERED": "1"}),
           "PYTHONPATH": str(PROJECT)}
    try:
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy", str(path),
                               "--root", str(TRADING_ROOT)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              env=env)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


def test_a_full_disk_for_stdout_is_told_and_exits_120(tmp_path: Path) -> None:
    need(Path("/dev/full").exists(), "no /dev/full")
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy", str(path),
                               "--root", str(TRADING_ROOT)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              env={**BUFFERED, "PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stderr) == (
        120, "hostguard: cannot write stdout: No space left on device\n")


def test_a_profiled_run_exits_as_usual_so_the_profile_is_written(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    profile = tmp_path / "audit.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "agent",
                           "audit", "--policy", str(path), "--root", str(TRADING_ROOT)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**BUFFERED, "PYTHONPATH": str(PROJECT)}, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0


class _Exit(Exception):
    pass


@pytest.mark.parametrize(("error", "code", "told"), [
    (BrokenPipeError(32, "Broken pipe"), 1, ""),
    (OSError(28, "No space left on device"),
     120, "hostguard: cannot write stdout: No space left on device\n")])
def test_output_that_cannot_be_flushed_at_the_end(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], error: OSError,
        code: int, told: str) -> None:
    class Failing(io.StringIO):
        def flush(self) -> None:
            raise error

    def exit_with(status: int) -> NoReturn:
        raise _Exit(status)

    monkeypatch.setattr(cli, "main", lambda ending=False: 0)
    monkeypatch.setattr(cli, "_observed", lambda: False)  # pytest may trace this process
    monkeypatch.setattr(sys, "argv", ["hostguard", "audit"])
    monkeypatch.setattr(sys, "stdout", Failing())
    monkeypatch.setattr(os, "_exit", exit_with)
    with pytest.raises(_Exit) as ended:
        cli.run()
    assert ended.value.args == (code,)
    assert capfd.readouterr().err == told


def test_no_command_is_a_usage_error() -> None:
    done = run_cli()
    assert done.returncode == 2
    assert "the following arguments are required: COMMAND" in done.stderr


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


def test_policy_option_is_required() -> None:
    done = run_cli("audit", "--root", str(TRADING_ROOT))
    assert done.returncode == 2
    assert "the following arguments are required: --policy" in done.stderr


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
    assert other.returncode == 0
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
    assert lines[-1] == f"report written to {report}"
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


# --- lint (smoke; the golden tests live elsewhere) ---------------------------------------------


def test_lint_clean(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = run_cli("lint", "p.yaml", "--today", TODAY, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "1 file(s) checked: 0 error(s), 0 warning(s)\n", "")


def test_lint_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY)
    done = run_cli("lint", "bad.yaml", cwd=tmp_path)
    assert done.returncode == 1
    col = BAD_POLICY.splitlines()[10].index("high") + 1
    assert done.stdout.splitlines() == [
        f"bad.yaml:11:{col}: error: op 'ge' needs an integer value [spec]",
        "1 file(s) checked: 1 error(s), 0 warning(s)",
    ]


def test_lint_missing_path(tmp_path: Path) -> None:
    done = run_cli("lint", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "hostguard: nope: No such file or directory" in done.stdout


def test_lint_strict_warnings(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", policy("ok", PASSING, waivers=[
        {"check": "KRN-001", "reason": "CHG-2", "expires": "2028-01-01"}]))
    lenient = run_cli("lint", "p.yaml", "--today", TODAY, cwd=tmp_path)
    assert lenient.returncode == 0
    assert "warning: waiver for 'KRN-001' runs until 2028-01-01" in lenient.stdout
    assert run_cli("lint", "--strict", "p.yaml", "--today", TODAY, cwd=tmp_path).returncode == 1


def test_lint_formats(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY)
    as_json = run_cli("lint", "--format", "json", "bad.yaml", cwd=tmp_path)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert (data["schema"], data["files"], data["errors"]) == ("hostguard/lint/v1", 1, 1)
    assert data["diagnostics"][0]["rule"] == "spec"
    assert (data["diagnostics"][0]["path"], data["diagnostics"][0]["line"]) == ("bad.yaml", 11)
    sarif = run_cli("lint", "--format", "sarif", "bad.yaml", cwd=tmp_path)
    assert sarif.returncode == 1
    log = json.loads(sarif.stdout)
    assert log["version"] == "2.1.0"
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["spec"]
    github = run_cli("lint", "--format", "github", "bad.yaml", cwd=tmp_path)
    assert github.returncode == 1
    assert github.stdout.startswith("::error file=bad.yaml,line=11,")
    missing = run_cli("lint", "--format", "json", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == "hostguard: nope: No such file or directory\n"


def test_lint_bad_format() -> None:
    done = run_cli("lint", "--format", "html")
    assert done.returncode == 2
    assert "invalid choice: 'html'" in done.stderr


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


@pytest.mark.parametrize("ending", [False, True])
def test_the_collector_is_back_on_after_a_run_unless_the_process_ends(
        tmp_path: Path, ending: bool) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    assert gc.isenabled()
    try:
        code = cli.main(["audit", "--policy", str(path), "--root", str(TRADING_ROOT),
                         "--output", str(tmp_path / "out.json")], ending=ending)
        assert code == 0
        assert gc.isenabled() is not ending
    finally:
        gc.enable()

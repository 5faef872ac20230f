"""``hostguard lint``: discovery of policy files, exit codes, and scale.

Each test works in a temporary folder that is also the working folder, so paths in diagnostics
are relative and compared exactly.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from agent.lint.engine import LintReport, discover, lint_paths
from tests.authoring import TRADING_ROOT
from tests.policy.builders import policy, write
from tests.support import run_cli

TODAY = dt.date(2026, 11, 24)
BROKEN = "apiVersion: hostguard/v1\nkind: Policy\nchecks: [\n"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(*paths: str) -> LintReport:
    return lint_paths(paths, TODAY)


def found(report: LintReport) -> list[str]:
    return [str(d) for d in report.diagnostics]


def names(paths: list[Path]) -> list[str]:
    return [p.as_posix() for p in paths]


# --- discovery -------------------------------------------------------------------------------


def test_folders_are_searched_recursively_for_yaml_and_yml(here: Path) -> None:
    write(here, {
        "pol/a.yaml": policy("a"),
        "pol/z.yml": policy("z"),
        "pol/sub/deeper/c.yaml": policy("c"),
        "pol/notes.txt": BROKEN,
        "pol/a.yaml.bak": BROKEN,
        "pol/README.md": BROKEN,
        "pol/.hidden/h.yaml": BROKEN,
        "pol/.h.yaml": BROKEN,
        "pol/sub/.git/config.yaml": BROKEN,
    })
    files, diagnostics, usage = discover(["pol"])
    assert names(files) == ["pol/a.yaml", "pol/sub/deeper/c.yaml", "pol/z.yml"]
    assert (diagnostics, usage) == ([], [])
    report = lint("pol")
    assert (found(report), report.files, report.exit_code()) == ([], 3, 0)


def test_named_file_is_linted_whatever_its_suffix(here: Path) -> None:
    write(here, {"notes.txt": BROKEN, "policy.conf": policy("conf")})
    report = lint("notes.txt", "policy.conf")
    assert found(report) == [
        "notes.txt:4:1: error: while parsing a flow node did not find expected node content "
        "[yaml-syntax]",
    ]
    assert report.files == 2


def test_hidden_file_named_explicitly_is_linted(here: Path) -> None:
    write(here, {".p.yaml": BROKEN})
    assert [d.rule for d in lint(".p.yaml").diagnostics] == ["yaml-syntax"]


def test_missing_path_is_a_usage_error(here: Path) -> None:
    write(here, {"ok.yaml": policy("ok")})
    report = lint("ok.yaml", "nope")
    assert report.usage_errors == ("nope: No such file or directory",)
    assert report.diagnostics == ()
    assert report.files == 1
    assert report.exit_code() == 2


def test_empty_folder_warns(here: Path) -> None:
    (here / "empty").mkdir()
    write(here, {"only-text/readme.txt": "hello\n"})
    report = lint("empty", "only-text")
    assert found(report) == [
        "empty:1:1: warning: folder holds no *.yaml or *.yml file [no-policies]",
        "only-text:1:1: warning: folder holds no *.yaml or *.yml file [no-policies]",
    ]
    assert (report.exit_code(), report.exit_code(strict=True)) == (0, 1)


def test_folder_symlink_loop_is_reported_and_the_rest_linted(here: Path) -> None:
    write(here, {
        "pol/a.yaml": policy("a", checks=["A-1"]),
        "pol/sub/b.yaml": policy("b", checks=["A-1"]),  # a real error, still found
    })
    os.symlink("..", here / "pol/sub/loop")
    report = lint("pol")
    assert found(report) == [
        "pol/sub/b.yaml:5:5: error: duplicate check id 'A-1': also defined at pol/a.yaml:5:5 "
        "[duplicate-id]",
        "pol/sub/loop:1:1: error: symbolic-link loop: pol/sub/loop leads back to pol "
        "[symlink-loop]",
    ]
    assert report.files == 2


def test_file_symlink_loop_in_a_folder_is_a_read_error(here: Path) -> None:
    write(here, {"pol/ok.yaml": policy("ok")})
    os.symlink("b.yaml", here / "pol/a.yaml")
    os.symlink("a.yaml", here / "pol/b.yaml")
    report = lint("pol")
    assert found(report) == [
        "pol/a.yaml:1:1: error: cannot read file: Too many levels of symbolic links [read-error]",
        "pol/b.yaml:1:1: error: cannot read file: Too many levels of symbolic links [read-error]",
    ]
    assert report.files == 3
    assert report.exit_code() == 1


def test_file_symlink_loop_named_on_the_command_line_is_a_usage_error(here: Path) -> None:
    os.symlink("b.yaml", here / "a.yaml")
    os.symlink("a.yaml", here / "b.yaml")
    report = lint("a.yaml")
    assert report.usage_errors == ("a.yaml: Too many levels of symbolic links",)
    assert report.exit_code() == 2


def test_dangling_symlink_is_a_read_error(here: Path) -> None:
    (here / "pol").mkdir()
    os.symlink("gone.yaml", here / "pol/x.yaml")
    assert found(lint("pol")) == [
        "pol/x.yaml:1:1: error: cannot read file: No such file or directory [read-error]",
    ]


def test_a_folder_linked_twice_is_read_once(here: Path) -> None:
    write(here, {"shared/s.yaml": policy("s", checks=["S-1"])})
    (here / "pol").mkdir()
    os.symlink("../shared", here / "pol/l1")
    os.symlink("../shared", here / "pol/l2")
    files, diagnostics, _ = discover(["pol"])
    assert names(files) == ["pol/l1/s.yaml"]
    assert diagnostics == []
    assert found(lint("pol", "shared")) == []  # the same file by two names: one check


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    (tmp_path / "pol").mkdir()
    os.mkfifo(tmp_path / "pol/pipe.yaml")
    result = run_cli("lint", "--today", "2026-11-24", "pol", cwd=tmp_path, timeout=60)
    assert result.stdout.splitlines()[0] == (
        "pol/pipe.yaml:1:1: error: not a regular file [read-error]"
    )
    assert result.returncode == 1


# --- exit codes ------------------------------------------------------------------------------


def cli(folder: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("lint", "--today", "2026-11-24", *args, cwd=folder)
    return result.returncode, result.stdout, result.stderr


def test_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, {
        "clean/a.yaml": policy("a", checks=["A-1"]),
        "warn/w.yaml": policy("w", checks=["W-1"], rest=(
            "waivers:\n  - check: W-1\n    reason: r\n    expires: 2030-01-01\n")),
        "bad/b.yaml": policy("b", checks=["B-1", "B-1"]),
    })
    assert cli(tmp_path, "clean") == (0, "1 file(s) checked: 0 error(s), 0 warning(s)\n", "")
    assert cli(tmp_path, "clean", "--strict")[0] == 0
    code, out, _ = cli(tmp_path, "warn")
    assert (code, out.splitlines()[-1]) == (0, "1 file(s) checked: 0 error(s), 1 warning(s)")
    assert cli(tmp_path, "warn", "--strict")[0] == 1
    code, out, _ = cli(tmp_path, "bad")
    assert (code, out.splitlines()[-1]) == (1, "1 file(s) checked: 1 error(s), 0 warning(s)")
    code, out, err = cli(tmp_path, "bad", "missing")
    assert code == 2
    assert "hostguard: missing: No such file or directory" in out
    code, out, err = cli(tmp_path, "clean", "missing", "--format", "json")
    assert code == 2
    assert err == "hostguard: missing: No such file or directory\n"


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path, "--format", "xml", ".")
    assert code == 2
    assert "invalid choice" in err
    result = run_cli("lint", "--today", "2026-13-01", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a date" in result.stderr


def test_exit_code_rules() -> None:
    assert LintReport((), 0, ()).exit_code(strict=True) == 0
    assert LintReport((), 0, ("x: gone",)).exit_code() == 2


# --- scale -----------------------------------------------------------------------------------


def test_a_thousand_valid_policies_lint_clean(here: Path) -> None:
    files = {}
    for i in range(1000):
        files[f"fleet/g{i % 10}/p{i:04d}.yaml"] = policy(
            f"p{i:04d}", checks=[f"C-{i:04d}", f"D-{i:04d}"],
            rest=f"waivers:\n  - check: C-{i:04d}\n    reason: r\n    expires: 2027-01-01\n",
        )
    write(here, files)
    report = lint("fleet")
    assert found(report) == []
    assert report.files == 1000


PROFILE = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: p}
default_action: {errno: 1}
rules:
  - syscalls: [read, write, nosuchcall]
"""


def test_seccomp_profiles_in_a_policy_folder_are_linted_as_profiles(here: Path) -> None:
    write(here / "policies", {"base.yaml": policy("base"), "seccomp/p.yaml": PROFILE})
    report = lint("policies")
    assert report.files == 2
    assert [(d.location.path, d.location.line, d.rule) for d in report.diagnostics] == [
        ("policies/seccomp/p.yaml", 6, "seccomp-unknown-syscall")]


def test_a_policy_cannot_extend_a_seccomp_profile(here: Path) -> None:
    write(here, {"p.yaml": PROFILE.replace(", nosuchcall", ""),
                 "child.yaml": policy("child", extends=["p.yaml"])})
    assert [d.message for d in lint("child.yaml").diagnostics] == [
        "cannot extend 'p.yaml': it is a SeccompProfile, not a Policy"]


def test_audit_of_a_folder_skips_seccomp_profiles(here: Path) -> None:
    write(here / "policies", {"base.yaml": policy("base", checks=["KRN-001"]), "p.yaml": PROFILE})
    done = run_cli("audit", "--policy", "policies", "--root", str(TRADING_ROOT), cwd=here)
    assert (done.returncode, done.stderr) == (0, "")
    assert "1 checks" in done.stdout

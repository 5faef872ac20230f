"""What the audit prints on a terminal, through real subprocesses (a pseudo-terminal for a TTY)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agent.daemon.history import History
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.report.html_runs import make_check, make_result, make_run
from tests.support import PROJECT, need_root, need_tool

TODAY = "2026-06-01"
FAILING = [sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
           sysctl("LAT-001", "vm.swappiness", "eq", 10)]
PAINTED_FAIL = "\x1b[1;31mFAIL          \x1b[0m \x1b[31mhigh    \x1b[0m LAT-001"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return {**env, "PYTHONPATH": str(PROJECT), **extra}


def on_a_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m agent ARGS`` with stdout on a pseudo-terminal: (exit status, output)."""
    leader, follower = os.openpty()
    with subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=PROJECT,
                          env=_env(env or {}), stdin=subprocess.DEVNULL, stdout=follower,
                          stderr=subprocess.DEVNULL) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=120)
    os.close(leader)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def piped(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=PROJECT,
                          env=_env(env or {}), capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture
def failing_policy(tmp_path: Path) -> Path:
    return write(tmp_path / "p.yaml", policy("bad", FAILING))


def audit_args(path: Path, *more: str) -> list[str]:
    return ["audit", "--today", TODAY, "--policy", str(path), "--root", str(TRADING_ROOT), *more]


def test_a_terminal_gets_colour(failing_policy: Path) -> None:
    code, out = on_a_terminal(*audit_args(failing_policy))
    assert code == 1
    assert out.startswith(PAINTED_FAIL)


@pytest.mark.parametrize(("env", "more"), [
    ({"NO_COLOR": "1"}, []),
    ({}, ["--color", "never"]),
])
def test_no_colour_on_a_terminal_when_asked(failing_policy: Path, env: dict[str, str],
                                            more: list[str]) -> None:
    code, out = on_a_terminal(*audit_args(failing_policy, *more), env=env)
    assert code == 1
    assert out.startswith("FAIL           high     LAT-001")
    assert "\x1b" not in out


def test_an_empty_no_color_is_unset(failing_policy: Path) -> None:
    assert on_a_terminal(*audit_args(failing_policy), env={"NO_COLOR": ""})[1].startswith(
        PAINTED_FAIL)


def test_no_colour_into_a_pipe(failing_policy: Path) -> None:
    done = piped(*audit_args(failing_policy))
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL           high     LAT-001")
    assert "\x1b" not in done.stdout


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}])
def test_color_always_colours_a_pipe_too(failing_policy: Path, env: dict[str, str]) -> None:
    done = piped(*audit_args(failing_policy, "--color", "always"), env=env)
    assert done.stdout.startswith(PAINTED_FAIL)


def test_rendering_a_result_as_text_follows_the_terminal(failing_policy: Path,
                                                         tmp_path: Path) -> None:
    result = tmp_path / "r.json"
    piped(*audit_args(failing_policy, "--format", "json", "--output", str(result)))
    render = ["report", "render", str(result), "--format", "text"]
    assert on_a_terminal(*render)[1].startswith(PAINTED_FAIL)
    assert "\x1b" not in on_a_terminal(*render, "--color", "never")[1]
    assert piped(*render).stdout.startswith("FAIL           high     LAT-001")
    # into a file: no colour unless asked
    assert on_a_terminal(*render, "-o", str(tmp_path / "r.txt"))[0] == 0
    assert (tmp_path / "r.txt").read_text().startswith("FAIL           high     LAT-001")
    assert on_a_terminal(*render, "-o", str(tmp_path / "r.txt"), "--color", "always")[0] == 0
    assert (tmp_path / "r.txt").read_text().startswith(PAINTED_FAIL)


def test_a_bad_color_choice_is_refused() -> None:
    done = piped("audit", "--color", "sometimes")
    assert done.returncode == 2
    assert "argument --color: invalid choice: 'sometimes'" in done.stderr


def test_a_real_capability_list_is_folded_and_whole_with_verbose(tmp_path: Path) -> None:
    need_root()  # root's processes hold every capability: a list of ~40 names each
    caps = check("CAP-1", "process", {"exe": os.path.realpath(sys.executable),
                                      "capabilities": {"effective": {"subset_of": []}}})
    caps["remediation"] = "CapabilityBoundingSet= in the unit\nsystemctl restart it"
    path = write(tmp_path / "caps.yaml", policy("caps", [caps]))
    done = piped(*audit_args(path)[:-2], "--root", "/")
    assert done.returncode == 1, done.stderr
    found = done.stdout.splitlines()[1]
    shown = re.findall(r"CapEff has ((?:CAP_\w+, )*CAP_\w+) \(\+(\d+) more\)", found)
    assert shown, found
    whole = piped(*audit_args(path)[:-2], "--root", "/", "-v").stdout.splitlines()
    names = re.findall(r"CapEff has ((?:CAP_\w+, )*CAP_\w+)", whole[1])
    assert "(+" not in whole[1]
    for (first, more), every in zip(shown, names, strict=False):
        assert every.startswith(first)
        assert len(every.split(", ")) == len(first.split(", ")) + int(more)
    assert whole[2:4] == [" " * 34 + "fix: CapabilityBoundingSet= in the unit",
                          " " * 34 + "     systemctl restart it"]


# --- the summary and the next step -------------------------------------------------------------


def test_the_summary_carries_the_score_and_the_next_step(failing_policy: Path) -> None:
    code, out = on_a_terminal(*audit_args(failing_policy, "--color", "never"))
    assert code == 1
    summary, hint = out.splitlines()[-2:]
    assert summary.startswith("hostguard audit of trd-gw-01 ")
    assert ": 2 checks, 1 pass, 1 fail, score 50.0% [" in summary
    assert hint == ("next: --report html,json writes the HTML report and the JSON result "
                    "(into reports/)")
    assert "next:" not in piped(*audit_args(failing_policy)).stdout  # a hint, not for logs


def test_the_next_step_names_the_json_and_renders_the_html(failing_policy: Path,
                                                           tmp_path: Path) -> None:
    result = tmp_path / "my results" / "r.json"
    code, out = on_a_terminal(*audit_args(failing_policy, "--format", "json", "--output",
                                          str(result)))
    assert code == 1
    wrote, hint = out.splitlines()[-2:]
    assert wrote == f"wrote {result}"
    page = tmp_path / "my results" / "r.html"
    assert hint == f"next: hostguard report render '{result}' -o '{page}'"
    # the advice works as given
    done = piped(*shlex.split(hint.removeprefix("next: hostguard ")))
    assert (done.returncode, done.stdout) == (0, f"wrote {page}\n"), done.stderr
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")


def test_no_next_step_once_the_html_is_written(failing_policy: Path, tmp_path: Path) -> None:
    code, out = on_a_terminal(*audit_args(failing_policy, "--report", "json,html",
                                          "--output-dir", str(tmp_path / "reports")))
    assert code == 1
    (page,) = (tmp_path / "reports").glob("*.html")
    assert out.splitlines()[-1] == f"wrote {page}"
    assert "next:" not in out


def test_make_audit_writes_the_html_report_and_says_where(tmp_path: Path) -> None:
    make = need_tool("make")
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: make builds no venv, the CLI runs from here
    reports = tmp_path / "out"
    done = subprocess.run([make, "-s", "audit", f"STAMP={stamp}", f"REPORTS={reports}",
                           f"HOSTGUARD={sys.executable} -m agent"], cwd=PROJECT, env=_env({}),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (result,) = reports.glob("audit-*.json")
    (page,) = reports.glob("*.html")
    assert done.stdout.splitlines()[-2:] == [f"wrote {result}", f"wrote {page}"]
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")


def test_history_show_follows_the_terminal_too(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with History(db) as history:
        history.record(make_run("gw", [make_result(make_check("LAT-001", "high"), "fail")]))
    show = ["history", "show", "latest", "--db", str(db)]
    assert on_a_terminal(*show)[1].startswith(PAINTED_FAIL)
    assert on_a_terminal(*show, env={"NO_COLOR": "1"})[1].startswith(
        "FAIL           high     LAT-001")
    assert piped(*show).stdout.startswith("FAIL           high     LAT-001")
    assert piped(*show, "--color", "always").stdout.startswith(PAINTED_FAIL)

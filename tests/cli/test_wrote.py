"""Every command that writes a file says so one way: ``wrote PATH``, through real subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.support import PROJECT, run_cli

GATEWAY = PROJECT / "policies" / "seccomp" / "trading-gateway.yaml"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("result")
    path = write(folder / "p.yaml", policy("ok", [sysctl("KRN-001", "kernel.kptr_restrict",
                                                         "ge", 1)]))
    out = folder / "r.json"
    done = run_cli("audit", "--today", "2026-06-01", "--policy", str(path), "--root",
                   str(TRADING_ROOT), "--format", "json", "--output", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize(("command", "name", "then"), [
    (["report", "render", "{result}", "--format", "sarif"], "r.sarif", ""),
    (["report", "merge", "{result}"], "fleet.html",
     " (fleet page of 1 host(s) from 1 result(s))"),
    (["seccomp", "export", str(GATEWAY)], "gw.json", ""),
    (["seccomp", "merge", str(GATEWAY), str(GATEWAY)], "gw.yaml", ""),
])
def test_wrote_path(tmp_path: Path, result: Path, command: list[str], name: str,
                    then: str) -> None:
    out = tmp_path / name
    done = run_cli(*(w.format(result=result) for w in command), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    assert done.stdout == f"wrote {out}{then}\n"


def test_audit_says_wrote_for_each_file(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", [sysctl("KRN-001", "kernel.kptr_restrict",
                                                           "ge", 1)]))
    done = run_cli("audit", "--today", "2026-06-01", "--policy", str(path), "--root",
                   str(TRADING_ROOT), "--output", str(tmp_path / "a.txt"), "--report", "sarif",
                   "--output-dir", str(tmp_path / "reports"))
    assert done.returncode == 0, done.stderr
    (sarif,) = (tmp_path / "reports").iterdir()
    assert done.stdout.splitlines()[-2:] == [f"wrote {tmp_path / 'a.txt'}", f"wrote {sarif}"]

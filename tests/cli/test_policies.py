"""``hostguard policies list|show|copy`` on the policies shipped with hostguard."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.cli import main
from tests.support import PROJECT

SHIPPED = PROJECT / "policies"
NAMES = sorted(p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*.yaml"))


def test_list_names_every_policy_and_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    row = next(line for line in lines if line.startswith("seccomp/trading-gateway.yaml "))
    assert row.split()[1:3] == ["SeccompProfile", "trading-gateway:"]
    row = next(line for line in lines if line.startswith("trading-baseline.yaml "))
    assert row.split()[1:3] == ["Policy", "trading-baseline:"]


@pytest.mark.parametrize("name", ["seccomp/trading-gateway.yaml", "seccomp/trading-gateway",
                                  "trading-gateway"])
def test_show_prints_the_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies", "show", name]) == 0
    assert capsys.readouterr().out == (SHIPPED / "seccomp/trading-gateway.yaml").read_text()


def test_show_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policies", "show", "trading-baselin"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("hostguard: no shipped policy or profile named 'trading-baselin' (did you "
                   "mean 'trading-baseline'?); `hostguard policies list` names them\n")


def test_copy_then_again_then_a_changed_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    assert main(["policies", "copy", str(out)]) == 0
    copied = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert copied == NAMES
    for name in NAMES:
        assert (out / name).read_bytes() == (SHIPPED / name).read_bytes()
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o644
    first = capsys.readouterr().out.splitlines()
    assert f"created {out}/seccomp/base.yaml (file, mode 0644)" in first

    assert main(["policies", "copy", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"unchanged {out}/{n}" for n in
                                                    sorted(NAMES, key=lambda n: n.split("/"))]

    mine = out / "trading-baseline.yaml"
    mine.write_text(mine.read_text() + "# my change\n")
    assert main(["policies", "copy", str(out)]) == 1
    said = capsys.readouterr().out
    assert (f"kept {mine}: differs from what hostguard writes (--force replaces it)\n"
            f"--- {mine} (on disk)\n+++ {mine} (hostguard)\n") in said
    assert "-# my change\n" in said
    assert mine.read_text().endswith("# my change\n")
    assert main(["policies", "copy", str(out), "--force"]) == 0
    assert f"replaced {mine} (file, mode 0644)" in capsys.readouterr().out
    assert mine.read_bytes() == (SHIPPED / "trading-baseline.yaml").read_bytes()


def test_copy_into_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert main(["policies", "copy", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == (f"hostguard: cannot write {tmp_path}/f: {tmp_path}/f is "
                                       "not a folder\nhostguard: nothing written\n")

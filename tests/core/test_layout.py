"""Laying out files: created, unchanged, the administrator's kept (with a diff) or forced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.core.layout import Entry, State, apply, plan

ENTRIES = [Entry(Path("/etc/app"), 0o750), Entry(Path("/etc/app/app.yaml"), 0o640, b"a: 1\n"),
           Entry(Path("/etc/app/sub"), 0o750), Entry(Path("/etc/app/sub/x.yaml"), 0o640, b"x\n")]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_created_with_their_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        steps = plan(ENTRIES, tmp_path)
        assert [s.state for s in steps] == [State.CREATE] * 4
        assert [s.target for s in steps] == [tmp_path / "etc/app", tmp_path / "etc/app/app.yaml",
                                             tmp_path / "etc/app/sub",
                                             tmp_path / "etc/app/sub/x.yaml"]
        apply(steps)
    finally:
        os.umask(old)
    assert (tmp_path / "etc/app/app.yaml").read_bytes() == b"a: 1\n"
    assert [mode(s.target) for s in steps] == [0o750, 0o640, 0o750, 0o640]
    assert mode(tmp_path / "etc") == 0o700  # a parent: made when missing, under the umask
    assert [s.state for s in plan(ENTRIES, tmp_path)] == [State.UNCHANGED] * 4


def test_a_changed_file_is_kept_with_a_diff_unless_forced(tmp_path: Path) -> None:
    apply(plan(ENTRIES, tmp_path))
    config = tmp_path / "etc/app/app.yaml"
    config.write_bytes(b"a: 2\n")
    os.chmod(tmp_path / "etc/app", 0o755)
    steps = plan(ENTRIES, tmp_path)
    assert [s.state for s in steps] == [State.KEEP, State.KEEP, State.UNCHANGED, State.UNCHANGED]
    assert steps[0].difference == f"{tmp_path}/etc/app has mode 0755, hostguard writes 0750"
    assert steps[1].difference == (f"--- {config} (on disk)\n+++ {config} (hostguard)\n"
                                   "@@ -1 +1 @@\n-a: 2\n+a: 1")
    apply(steps)
    assert config.read_bytes() == b"a: 2\n"
    assert mode(tmp_path / "etc/app") == 0o755
    forced = plan(ENTRIES, tmp_path, force=True)
    assert [s.state for s in forced][:2] == [State.REPLACE, State.REPLACE]
    apply(forced)
    assert config.read_bytes() == b"a: 1\n"
    assert mode(tmp_path / "etc/app") == 0o750


def test_a_mode_change_alone_is_a_difference(tmp_path: Path) -> None:
    apply(plan(ENTRIES, tmp_path))
    os.chmod(tmp_path / "etc/app/app.yaml", 0o644)
    step = plan(ENTRIES, tmp_path)[1]
    assert (step.state, step.difference) == (
        State.KEEP, f"{tmp_path}/etc/app/app.yaml has mode 0644, hostguard writes 0640")


def test_a_link_is_never_followed_and_a_folder_in_the_way_blocks(tmp_path: Path) -> None:
    (tmp_path / "etc/app/sub").mkdir(parents=True)
    os.chmod(tmp_path / "etc/app/sub", 0o750)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"a: 1\n")
    (tmp_path / "etc/app/app.yaml").symlink_to(elsewhere)
    (tmp_path / "etc/app/sub/x.yaml").mkdir()
    steps = plan(ENTRIES, tmp_path, force=True)
    assert [s.state for s in steps][1:] == [State.REPLACE, State.UNCHANGED, State.BLOCKED]
    assert steps[1].difference == f"{tmp_path}/etc/app/app.yaml is a symbolic link"
    assert steps[3].difference == f"{tmp_path}/etc/app/sub/x.yaml is a folder"
    apply(steps[:2])
    assert not (tmp_path / "etc/app/app.yaml").is_symlink()
    assert elsewhere.read_bytes() == b"a: 1\n"


def test_a_link_to_a_folder_serves_as_the_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o750)
    os.chmod(real, 0o750)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/app").symlink_to(real)
    assert plan(ENTRIES[:1], tmp_path)[0].state is State.UNCHANGED

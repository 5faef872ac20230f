"""agent.core.atomic: the old file or the new one, never half of one, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.core.atomic import write_atomic


def test_writes_with_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["report.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_long_name_still_gets_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / ("r" * 250)
    write_atomic(target, b"long")
    assert target.read_bytes() == b"long"
    assert os.listdir(tmp_path) == [target.name]

"""Paths as diagnostics show them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core.location import display_path


def test_relative_inside_the_working_folder_absolute_outside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "p" / "a.yaml") == "p/a.yaml"
    assert display_path(Path("p/../a.yaml")) == "a.yaml"
    assert display_path(Path("/etc/hostguard/x.yaml")) == "/etc/hostguard/x.yaml"


def test_absolute_when_the_working_folder_is_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert display_path(Path("/etc/hostguard/policies/x.yaml")) == "/etc/hostguard/policies/x.yaml"
    assert display_path(Path("etc/hostguard/x.yaml")) == "/etc/hostguard/x.yaml"

"""The shipped gateway profile changed on disk, for tests that compare it with the original."""

from __future__ import annotations

from pathlib import Path

from tests.support import PROJECT


def netlink_17(folder: Path) -> Path:
    """The shipped gateway profile with its AF_NETLINK rule changed from 16 to 17 (its base
    copied beside it)."""
    shipped = PROJECT / "policies/seccomp"
    (folder / "base.yaml").write_text((shipped / "base.yaml").read_text())
    text = (shipped / "trading-gateway.yaml").read_text()
    assert text.count("value: 16}") == 1
    changed = folder / "gateway-17.yaml"
    changed.write_text(text.replace("value: 16}", "value: 17}"))
    return changed

"""The ``unit`` selector: system units only, whose cgroups lie in slices."""

from __future__ import annotations

import pytest

from agent.checks.units import in_unit, is_unit


@pytest.mark.parametrize(("path", "unit", "inside", "exactly"), [
    ("/system.slice/fixgw.service", "fixgw.service", True, True),
    ("/trading.slice/md.slice/fixgw.service", "fixgw.service", True, True),
    ("/trading.slice/fixgw.service/worker", "fixgw.service", True, False),
    ("/init.scope", "init.scope", True, True),
    ("/system.slice/other.service", "fixgw.service", False, False),
    # Inside another unit: its own tree, not the system's unit of that name.
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/fixgw.service",
     "fixgw.service", False, False),
    ("/user.slice/user-1000.slice/user@1000.service", "user@*.service", True, True),
    ("/system.slice/docker-1f.scope/system.slice/fixgw.service", "fixgw.service", False, False),
    ("/machine.slice/libpod-1f.scope/container/fixgw.service", "fixgw.service", False, False),
    ("/system.slice/builder.service/fixgw.service", "fixgw.service", False, False),
    ("/", "*", False, False),
])
def test_system_units_only(path: str, unit: str, inside: bool, exactly: bool) -> None:
    assert in_unit(path, unit) is inside
    assert is_unit(path, unit) is exactly

"""Which keys systemd 252 skips when assigned an empty value, probed again from systemd itself:
``systemd --dump-configuration-items`` lists the keys, each is assigned empty in a unit of its
own, and ``systemd-analyze verify`` says which assignments it ignores. The table the reader
keeps (:data:`agent.host.unitfiles.EMPTY_IGNORED`) must be that set, and the values the reader
gives must be the ones systemd's own dump of the loaded unit shows."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from agent.host.unitfiles import EMPTY_IGNORED, load_unit
from tests.support import need, need_tool

SYSTEMD = Path("/lib/systemd/systemd")
VENDOR = "usr/lib/systemd/system"


def verify_dump(root: Path, names: list[str]) -> str:
    """What ``systemd-analyze verify`` says at debug level loading ``names`` under ``root``:
    its warnings and its dump of each loaded unit (one ``\t\tKey: value`` line a setting)."""
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_COLORS": "0"}
    done = subprocess.run([need_tool("systemd-analyze"), "verify", "--man=no", f"--root={root}",
                           "--", *names], capture_output=True, text=True, timeout=600,
                          check=False, env=env)
    return done.stdout + done.stderr


def _items() -> dict[str, list[str]]:
    need(SYSTEMD.is_file(), f"no {SYSTEMD} to list the configuration items")
    done = subprocess.run([str(SYSTEMD), "--dump-configuration-items"], capture_output=True,
                          text=True, timeout=60, check=True)
    items: dict[str, list[str]] = {}
    section = ""
    for line in done.stdout.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and section:
            items.setdefault(section, []).append(line.split("=", 1)[0])
    return items


def test_the_table_is_what_systemd_ignores(tmp_path: Path) -> None:
    items = _items()
    units: dict[str, str] = {}
    for section in ("Unit", "Service"):
        for key in items[section]:
            if key == "ExecStart":
                continue
            name = f"k{len(units)}.service"
            body = (f"[Unit]\n{key}=\n[Service]\nExecStart=/bin/true\n" if section == "Unit"
                    else f"[Service]\nExecStart=/bin/true\n{key}=\n")
            path = tmp_path / VENDOR / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            units[name] = key
    out = verify_dump(tmp_path, list(units))
    ignored = {units[name] for name, message in
               re.findall(r"/(k\d+\.service):\d+: (.*)", out) if "ignoring" in message.lower()}
    assert len(units) > 300
    assert ignored == EMPTY_IGNORED


def test_values_as_systemds_dump_shows_them(tmp_path: Path) -> None:
    unit = tmp_path / VENDOR / "a.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\nRestart=always\nLimitMEMLOCK=64M\n"
                    "CPUAffinity=2\nNice=5\n", encoding="utf-8")
    dropin = tmp_path / "etc/systemd/system/a.service.d/x.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nRestart=\nLimitMEMLOCK=\nCPUAffinity=3 4\nNice=\n",
                      encoding="utf-8")
    out = verify_dump(tmp_path, ["a.service"])
    dump = dict(re.findall(r"(?m)^\t\t(Restart|LimitMEMLOCK|CPUAffinity|Nice): (.*)$", out))
    files = load_unit(tmp_path, "a.service")
    assert dump["Restart"] == files.last("Service", "Restart") == "always"  # empty skipped
    assert dump["LimitMEMLOCK"] == str(64 << 20)
    assert files.last("Service", "LimitMEMLOCK") == "64M"  # empty skipped
    assert dump["CPUAffinity"] == "2-4"
    assert files.values("Service", "CPUAffinity") == ["2", "3 4"]
    assert "Nice" not in dump  # Nice= resets it: not set, as the reader says
    assert files.last("Service", "Nice") == ""

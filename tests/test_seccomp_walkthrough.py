"""docs/seccomp.md's worked example runs as written: record, log mode, learn, apply, verify.

The block between ``<!-- walkthrough:begin -->`` and ``<!-- walkthrough:end -->`` is run with
bash from the checkout, ``hostguard`` on PATH, its temporary folder under tmp_path; what each
step left behind is then checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from agent.seccomp.profile import load_profile
from tests.support import PROJECT, need_root, need_tool

DOC = PROJECT / "docs" / "seccomp.md"
BLOCK = re.compile(r"^<!-- walkthrough:begin -->\n```sh\n(.*?)```\n<!-- walkthrough:end -->$",
                   re.M | re.S)


def allowed(path: Path) -> set[str]:
    profile = load_profile(path)
    assert not isinstance(profile, list), profile
    return {name for rule in profile.rules for name in rule.syscalls}


def test_the_worked_example_runs(tmp_path: Path) -> None:
    need_root()
    need_tool("python3")
    assert "log" in Path("/proc/sys/kernel/seccomp/actions_logged").read_text().split()
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 1
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    run = subprocess.Popen(["bash", "-euo", "pipefail", "-c", blocks[0]], cwd=PROJECT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        out, err = run.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # a gateway left behind by a failed step
    assert run.returncode == 0, out + err
    (work,) = tmp_path.iterdir()
    recorded, learned = allowed(work / "gateway.yaml"), allowed(work / "gateway-v2.yaml")
    # rename: the rotation and the port file; rt_sigreturn: the SIGHUP handler's return, when
    # the recorded run took no signal.
    added = learned - recorded
    assert "rename" in added and added <= {"rename", "rt_sigreturn"}, added
    assert re.search(r"applied .*gateway-v2\.yaml \(enforce, no_new_privs set\) through "
                     r"thread \d+", out), out
    assert out.count("equivalent to ") == 2  # apply's proof, then verify's
    # The filtered gateway went on: the order before SIGHUP is in the rotated journal.
    assert (work / "prod.log.1").read_text() == "1 BUY 10 XYZ\n"
    assert (work / "prod.log").read_text() == "2 SELL 10 XYZ\n"
    dropin = (work / "systemd" / "gateway.service.d" / "hostguard-seccomp.conf").read_text()
    assert "SystemCallFilter=" in dropin and "rename" in dropin
    assert json.loads((work / "gateway.json").read_text())["defaultAction"]

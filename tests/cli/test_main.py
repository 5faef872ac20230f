"""The program: version, console script, ``python -m agent``, the end of a run (flushes, exit
status), the collector around one-shot commands."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__, cli
from tests.authoring import TRADING_ROOT, policy, write
from tests.cli.test_audit import ERRORING, PASSING, TODAY
from tests.support import PROJECT, need, run_cli


def test_version() -> None:
    done = run_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"hostguard {__version__}\n", "")


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "hostguard"
    need(script.is_file(), f"no hostguard console script beside {sys.executable} "
                           "(the venv was not built from pyproject.toml)")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout) == (0, f"hostguard {__version__}\n")
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = subprocess.run([str(script), "audit", "--policy", str(path), "--root",
                           str(TRADING_ROOT)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
"""The environment with stdout block-buffered on a pipe, as it usually is."""


def test_a_command_ends_through_the_interpreters_exit_and_loses_no_output(
        tmp_path: Path) -> None:
    # An atexit hook shows that the interpreter's exit ran; the output is a JSON report left
    # in stdout's buffer until the end.
    path = write(tmp_path / "p.yaml", policy("err", ERRORING))
    code = ("import atexit, os, sys\n"
            "atexit.register(lambda: os.write(2, b'atexit ran'))\n"
            "from agent.cli import run\n"
            "sys.argv = ['hostguard', *sys.argv[1:]]\n"
            "run()\n")
    for args, status in ((["audit", "--policy", str(path), "--root", str(TRADING_ROOT),
                           "--format", "json", "--today", TODAY], 3),
                         (["--version"], 0)):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=60, check=False,
                              env={**BUFFERED, "PYTHONPATH": str(PROJECT)})
        assert (done.returncode, done.stderr) == (status, "atexit ran")
        if status == 3:
            assert json.loads(done.stdout)["summary"]["total"] == 3


@pytest.mark.parametrize("buffered", [True, False])
def test_a_closed_stdout_exits_1_without_a_traceback(tmp_path: Path, buffered: bool) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads
    env = {**(BUFFERED if buffered else {**os.environ, "PYTHONUNBUFFERED": "1"}),
           "PYTHONPATH": str(PROJECT)}
    try:
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy", str(path),
                               "--root", str(TRADING_ROOT)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              env=env)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


def test_a_full_disk_for_stdout_is_told_and_exits_120(tmp_path: Path) -> None:
    need(Path("/dev/full").exists(), "no /dev/full")
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy", str(path),
                               "--root", str(TRADING_ROOT)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              env={**BUFFERED, "PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stderr) == (
        120, "hostguard: cannot write stdout: No space left on device\n")


def test_a_profiled_run_exits_as_usual_so_the_profile_is_written(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    profile = tmp_path / "audit.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "agent",
                           "audit", "--policy", str(path), "--root", str(TRADING_ROOT)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**BUFFERED, "PYTHONPATH": str(PROJECT)}, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0


@pytest.mark.parametrize(("error", "code", "told"), [
    (BrokenPipeError(32, "Broken pipe"), 1, ""),
    (OSError(28, "No space left on device"),
     120, "hostguard: cannot write stdout: No space left on device\n")])
def test_output_that_cannot_be_flushed_at_the_end(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], error: OSError,
        code: int, told: str) -> None:
    class Failing(io.StringIO):
        def flush(self) -> None:
            raise error

    monkeypatch.setattr(cli, "main", lambda ending=False: 0)
    monkeypatch.setattr(sys, "argv", ["hostguard", "audit"])
    monkeypatch.setattr(sys, "stdout", Failing())
    with pytest.raises(SystemExit) as ended:
        cli.run()
    assert ended.value.code == code
    assert capfd.readouterr().err == told


def test_no_command_is_a_usage_error() -> None:
    done = run_cli()
    assert done.returncode == 2
    assert "the following arguments are required: COMMAND" in done.stderr


@pytest.mark.parametrize("ending", [False, True])
def test_the_collector_is_back_on_after_a_run_unless_the_process_ends(
        tmp_path: Path, ending: bool) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    assert gc.isenabled()
    try:
        code = cli.main(["audit", "--policy", str(path), "--root", str(TRADING_ROOT),
                         "--output", str(tmp_path / "out.json")], ending=ending)
        assert code == 0
        assert gc.isenabled() is not ending
    finally:
        gc.enable()

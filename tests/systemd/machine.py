"""A container with a real systemd as PID 1, booted by systemd-nspawn from the host's own /usr.

``--volatile=yes`` gives a tmpfs root holding the host's ``/usr`` read-only: ``/etc`` starts
almost empty (systemd fills in what it needs), ``/root``, ``/tmp`` and the checkout are not there.
The test's staging folder is bound at :data:`INSIDE`, holding a copy of the checkout and a venv
whose scripts name the interpreter by its path inside. ``SYSTEMD_SECCOMP=0`` keeps nspawn's own
seccomp filter off PID 1, so the container behaves like a host (the unit's filters are the only
ones). Commands run inside through ``nsenter -a`` on PID 1, found as nspawn's child.

On a host with hybrid cgroups (this VM), nspawn does not hand the v1 ``pids`` hierarchy to the
container: ``pids.max`` reads are ``error`` there, with or without the unit's sandbox.

The container shares the host's network namespace, as a host's services do: some sysctls exist
only there (``net.core.bpf_jit_*`` is absent from any other namespace), so a private network
would hide what the audit must read. The services the tests start listen on ports 7001 (what the
shipped gateway policy expects), 8081 and 8082 of the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

INSIDE = Path("/opt/hg")
"""Where the staging folder appears inside the container (not under /tmp: the unit's
PrivateTmp=yes would hide it from the daemon)."""
VENV = INSIDE / "venv"
SRC = INSIDE / "src"
PATH = f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT = 60.0


class CommandFailed(AssertionError):
    """A command inside the container exited non-zero (its output is in the message)."""


def copy_checkout(project: Path, target: Path) -> Path:
    """The checkout's files (tracked and untracked, not ignored: no venv, no build output)
    copied into ``target``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=project,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = project / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            copied = target / name
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copied)
    return target


def stage(folder: Path, project: Path) -> Path:
    """Copy the checkout's files into ``folder/src`` and install it (not editable, no extras)
    into ``folder/venv``, built from /usr/bin/python3 so that the container's /usr runs it."""
    copy_checkout(project, folder / "src")
    venv = folder / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", str(folder / "src")],
                   check=True, capture_output=True, timeout=600)
    _retarget_scripts(venv / "bin", str(venv), str(VENV))
    # Services inside run as other users (nobody, the gateway's user) and read from here; the
    # host folders above it do not matter inside (the bind mount starts here).
    folder.chmod(0o755)
    return folder


def _retarget_scripts(bin_dir: Path, old: str, new: str) -> None:
    """Console scripts name their interpreter by absolute path: the path inside, not here."""
    prefix = f"#!{old}/".encode()
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(prefix):
            script.write_bytes(f"#!{new}/".encode() + data[len(prefix):])


class Machine:
    """One booted container; :meth:`run` executes a command inside as root."""

    def __init__(self, name: str, nspawn: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.nspawn = nspawn
        self.log = log
        self.pid1 = 0
        self.boot_seconds = 0.0
        self.foreign_failed: list[str] = []
        """Units of the host's other packages that failed at boot (tolerated)."""

    def run(self, *argv: str, check: bool = True, user: str | None = None,
            input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the container (as ``user`` when given, with no other groups)."""
        if user is not None:
            argv = ("setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--",
                    *argv)
        env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "SYSTEMD_COLORS": "0",
               "SYSTEMD_PAGER": "", "SYSTEMD_LESS": ""}
        done = subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "--", *argv], check=False,
                              env=env, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise CommandFailed(f"in {self.name}: {' '.join(argv)} exited {done.returncode}\n"
                                f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """A shell script inside (``sh -e``)."""
        return self.run("sh", "-ec", script, **kwargs)  # type: ignore[arg-type]

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        """A file inside, its folder made as needed."""
        self.run("sh", "-ec", f'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod {mode} "$1"',
                 "write", path, input=text)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat").stdout

    # -- life cycle ------------------------------------------------------------------------
    def _find_pid1(self, deadline: float) -> int:
        """nspawn's child once it has become systemd (it execs after setting up the mounts)."""
        me = self.nspawn.pid
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited {self.nspawn.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError):
                for child in Path(f"/proc/{me}/task/{me}/children").read_text().split():
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return int(child)
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no systemd child of nspawn within {BOOT_TIMEOUT} s")

    def wait_booted(self, started: float) -> None:
        deadline = started + BOOT_TIMEOUT
        self.pid1 = self._find_pid1(deadline)
        state = ""
        while time.monotonic() < deadline:  # "offline" or no bus until systemd has set up /run
            done = self.run("systemctl", "is-system-running", "--wait", check=False,
                            timeout=max(1.0, deadline - time.monotonic()))
            state = done.stdout.strip()
            if state in ("running", "degraded", "maintenance", "stopping"):
                break
            time.sleep(0.05)
        self.boot_seconds = time.monotonic() - started
        if state == "running":
            return
        failed = self.run("systemctl", "--failed", "--no-legend", "--plain", check=False).stdout
        units = [line.split()[0] for line in failed.splitlines() if line.split()]
        if state == "degraded" and units and not any(u.startswith("systemd-") for u in units):
            # Services of other packages installed on this host (prometheus for promtool,
            # adjtimex ...) start from the shared /usr without their /etc and fail: nothing of
            # the container's own, and nothing of hostguard's, which is not installed yet.
            self.foreign_failed = units
            return
        raise RuntimeError(f"{self.name}: system is {state or 'unreachable'}; failed units:"
                           f"\n{failed}")

    def poweroff(self, timeout: float = 30) -> None:
        """Power off and reap nspawn; kill the container when it does not go in time."""
        if self.nspawn.poll() is None and self.pid1:
            self.run("systemctl", "poweroff", "--no-block", check=False, timeout=10)
        try:
            self.nspawn.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        if self.pid1:  # SIGKILL of a PID namespace's init ends every process in it
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid1, signal.SIGKILL)
        self.nspawn.terminate()
        try:
            self.nspawn.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.nspawn.kill()
            self.nspawn.wait()


@contextlib.contextmanager
def booted(name: str, staging: Path, log: Path, target: str | None = None) -> Iterator[Machine]:
    """A container named ``name`` with ``staging`` bound at :data:`INSIDE`, booted into
    ``target`` (default: the host's default target); powered off and reaped on the way out,
    whatever happened."""
    argv = ["systemd-nspawn", "--register=no", "--keep-unit", "-D", "/", "--volatile=yes",
            "-M", name, "-b", "--console=pipe", f"--bind={staging}:{INSIDE}",
            # systemd-firstboot wants a terminal, which --console=pipe does not give.
            "--", "systemd.mask=systemd-firstboot.service"]
    if target is not None:
        argv.append(f"systemd.unit={target}")
    env = {**os.environ, "SYSTEMD_SECCOMP": "0"}
    started = time.monotonic()
    with log.open("wb") as out:
        nspawn = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    machine = Machine(name, nspawn, log)
    try:
        machine.wait_booted(started)
        # ld.so.cache lives in /etc, which starts empty: without it libseccomp is not found.
        machine.run("ldconfig")
        yield machine
    finally:
        machine.poweroff()


def machine_name(tag: str) -> str:
    """Unique per test process and module (a hostname: letters, digits, dashes)."""
    return f"hg-{tag}-{os.getpid()}"[:64]


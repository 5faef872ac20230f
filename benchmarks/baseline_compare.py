"""hostguard's verdicts next to Lynis's and OpenSCAP's on the same host, subject by subject.

Runs the three tools on this host (root; each writes into ``--out``, never into the checkout):

* ``hostguard audit`` over every shipped policy with ``--label role=gateway`` (so the
  gateway-only kinds, listening ports and time sync among them, are evaluated too), JSON result;
* ``lynis audit system --quick --no-colors`` with its report file and log in ``--out``;
* ``oscap xccdf eval`` of the SCAP Security Guide data stream for this Debian release, one
  profile. ssg-debian ships content for older releases only (0.1.65 in Debian 12: Debian 10
  and 11): without content for this release every rule is ``notapplicable`` (the data stream's
  platform check reads ``/etc/debian_version``), so the script evaluates the newest content
  twice, as shipped and with only that release test widened to this release, and says so.

Then it prints, in markdown, each tool's counts and a table by subject (kernel sysctls key by
key, mounts, file permissions, kernel modules, sshd, services, listening ports, time sync):
hostguard's verdict, Lynis's, oscap's, and whether they disagree. Why they disagree is not
guessed here: docs/comparison.md explains each disagreement from what each tool read.

A tool that is not installed is skipped with a message (exit 0 when none of Lynis and oscap is
there: nothing to compare). ``--lynis-from DIR`` (``lynis-report.dat`` and ``lynis.log``) and
``--oscap-from RESULTS.xml`` read earlier runs instead (Lynis takes minutes).

    python benchmarks/baseline_compare.py [--out DIR] [--profile ID] [--datastream FILE]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET  # noqa: S405 - the tools' own output on this host
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SSG = Path("/usr/share/xml/scap/ssg/content")
PROFILE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_high"
"""The ssg-debian profile with the most rules on the subjects hostguard checks (no CIS one)."""
RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
RELEASE_TEST = re.compile(r"(<ind:pattern operation=\"pattern match\">\^)(\d+)(\.\[0-9\]\+\$)")
"""The ``installed_OS_is_debianNN`` test: ``^11.[0-9]+$`` matched against /etc/debian_version."""


@dataclasses.dataclass(frozen=True)
class LynisRun:
    """What one Lynis run said: the report's findings and the log's per-key sysctl results."""

    hardening_index: str
    tests_done: str
    warnings: list[tuple[str, str]]
    """(test id, text) per ``warning[]`` line."""
    suggestions: list[tuple[str, str]]
    """(test id, text) per ``suggestion[]`` line."""
    sysctls: dict[str, str]
    """sysctl key -> ``pass``, ``fail (expected E, real R)`` or ``absent`` (KRNL-6000)."""
    performed: set[str]
    skipped: set[str]
    log: dict[str, list[str]]
    """test id -> the log lines it wrote (timestamps cut)."""


def parse_lynis_report(text: str) -> tuple[str, str, list[tuple[str, str]],
                                           list[tuple[str, str]]]:
    """Hardening index, tests done, warnings and suggestions of a ``lynis-report.dat``."""
    values: dict[str, list[str]] = collections.defaultdict(list)
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name].append(value)

    def findings(name: str) -> list[tuple[str, str]]:
        # test|text|details|solution|
        return [(test, rest.split("|", 1)[0]) for test, _, rest in
                (value.partition("|") for value in values[name])]

    return ((values["hardening_index"] or ["?"])[-1], (values["lynis_tests_done"] or ["?"])[-1],
            findings("warning[]"), findings("suggestion[]"))


SYSCTL_DIFF = re.compile(r"Result: sysctl key (\S+) has a different value than expected in scan "
                         r"profile\. Expected=(.*), Real=(.*)$")
SYSCTL_EQUAL = re.compile(r"Result: sysctl key (\S+) contains equal expected and current value")
SYSCTL_ABSENT = re.compile(r"Result: key (\S+) does not exist on this machine")
PERFORMED = re.compile(r"Performing test ID (\S+) ")
SKIPPED = re.compile(r"Skipped test (\S+) ")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def parse_lynis_log(text: str) -> tuple[dict[str, str], set[str], set[str], dict[str, list[str]]]:
    """Per-key KRNL-6000 results, tests performed and skipped, and each test's log lines."""
    sysctls: dict[str, str] = {}
    performed: set[str] = set()
    skipped: set[str] = set()
    log: dict[str, list[str]] = collections.defaultdict(list)
    current = ""
    for raw in text.splitlines():
        line = STAMP.sub("", raw)
        if started := PERFORMED.match(line):
            current = started.group(1)
            performed.add(current)
        elif gone := SKIPPED.match(line):
            current = ""
            skipped.add(gone.group(1))
        elif line.startswith("===="):
            current = ""
        elif current:
            log[current].append(line)
        if diff := SYSCTL_DIFF.match(line):
            sysctls[diff.group(1)] = f"fail (expected {diff.group(2)}, real {diff.group(3)})"
        elif equal := SYSCTL_EQUAL.match(line):
            sysctls[equal.group(1)] = "pass"
        elif absent := SYSCTL_ABSENT.match(line):
            sysctls[absent.group(1)] = "absent"
    return sysctls, performed, skipped, dict(log)


def read_lynis(folder: Path) -> LynisRun:
    index, done, warnings, suggestions = parse_lynis_report(
        (folder / "lynis-report.dat").read_text(errors="replace"))
    sysctls, performed, skipped, log = parse_lynis_log(
        (folder / "lynis.log").read_text(errors="replace"))
    return LynisRun(index, done, warnings, suggestions, sysctls, performed, skipped, log)


def parse_oscap(path: Path) -> dict[str, str]:
    """Rule id (without the ssgproject prefix) -> result, from an XCCDF results file."""
    results: dict[str, str] = {}
    for rule in ET.parse(path).getroot().iter(f"{XCCDF}rule-result"):  # noqa: S314 - own output
        result = rule.find(f"{XCCDF}result")
        results[rule.get("idref", "").removeprefix(RULE_PREFIX)] = (
            "?" if result is None else result.text or "?")
    return results


def release() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_ID="):
            return line.partition("=")[2].strip('"')
    return "?"


def datastream(explicit: Path | None) -> Path | None:
    """The data stream for this release, else the newest ssg-debian one there is."""
    if explicit:
        return explicit
    exact = SSG / f"ssg-debian{release()}-ds.xml"
    if exact.exists():
        return exact
    found = sorted(SSG.glob("ssg-debian*-ds.xml"),
                   key=lambda p: int(re.sub(r"\D", "", p.name.split("-ds")[0]) or 0))
    return found[-1] if found else None


def retarget(source: Path, target: Path, version: str) -> int:
    """Copy ``source`` with its ``^NN.[0-9]+$`` release test widened to ``version``."""
    text, count = RELEASE_TEST.subn(rf"\g<1>(\g<2>|{version})\g<3>", source.read_text())
    target.write_text(text)
    return count


def run_oscap(stream: Path, profile: str, out: Path, name: str) -> dict[str, str]:
    results = out / f"oscap-{name}.xml"
    with (out / f"oscap-{name}.out").open("w") as log:
        # exit 2 = some rule failed; the results file is what counts
        subprocess.run(["oscap", "xccdf", "eval", "--profile", profile, "--results",
                        str(results), "--report", str(out / f"oscap-{name}.html"), str(stream)],
                       stdout=log, stderr=subprocess.STDOUT, check=False)
    if not results.exists():
        raise SystemExit(f"baseline_compare: oscap wrote no results; see {log.name}")
    return parse_oscap(results)


def run_lynis(out: Path) -> LynisRun:
    with (out / "lynis.out").open("w") as log:
        subprocess.run(["lynis", "audit", "system", "--quick", "--no-colors", "--logfile",
                        str(out / "lynis.log"), "--report-file", str(out / "lynis-report.dat")],
                       stdout=log, stderr=subprocess.STDOUT, check=False)
    return read_lynis(out)


def run_hostguard(out: Path) -> dict[str, dict[str, object]]:
    result = out / "hostguard.json"
    done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy",
                           str(PROJECT / "policies"), "--label", "role=gateway", "--format",
                           "json", "-o", str(result)], cwd=PROJECT, capture_output=True,
                          text=True, check=False)
    if done.returncode not in (0, 1, 3, 5):
        raise SystemExit(f"baseline_compare: hostguard audit exited {done.returncode}: "
                         f"{done.stderr.strip()}")
    return {r["id"]: r for r in json.loads(result.read_text())["results"]}


# --- the comparison ---------------------------------------------------------------------------

DECIDED = {"pass": "pass", "fail": "fail", "ok": "pass", "suggestion": "fail",
           "warning": "fail"}
"""Each tool's words for a decided verdict; anything else (error, n/a, skipped) abstains."""


@dataclasses.dataclass(frozen=True)
class Subject:
    """One thing all three tools could judge, and where each one does."""

    area: str
    name: str
    hostguard: tuple[str, ...] = ()
    lynis: tuple[str, str] | None = None
    """(test id, text its suggestion or warning carries for this subject; "" any)."""
    oscap: tuple[str, ...] = ()


SUBJECTS = (
    Subject("mounts", "/tmp on its own mount, nodev,nosuid", ("MNT-001",), ("FILE-6310", "/tmp"),
            ("partition_for_tmp", "mount_option_tmp_nodev", "mount_option_tmp_nosuid")),
    Subject("mounts", "/var/tmp nodev,nosuid", ("MNT-003",), ("FILE-6376", "/var/tmp"),
            ("mount_option_var_tmp_nodev", "mount_option_var_tmp_nosuid")),
    Subject("mounts", "/dev/shm nodev,nosuid,noexec", ("MNT-002",), ("FILE-6374", "/dev/shm"),
            ("mount_option_dev_shm_nodev", "mount_option_dev_shm_nosuid",
             "mount_option_dev_shm_noexec")),
    Subject("files", "/etc/passwd 0644 root:root", ("FILE-002",), ("FILE-7524", "/etc/passwd"),
            ("file_permissions_etc_passwd", "file_owner_etc_passwd",
             "file_groupowner_etc_passwd")),
    Subject("files", "/etc/group 0644 root:root", ("FILE-003",), ("FILE-7524", "/etc/group"),
            ("file_permissions_etc_group", "file_owner_etc_group", "file_groupowner_etc_group")),
    Subject("files", "/etc/shadow, /etc/gshadow 0640 root:shadow", ("FILE-001",), None,
            ("file_permissions_etc_shadow", "file_owner_etc_shadow",
             "file_groupowner_etc_shadow", "file_permissions_etc_gshadow",
             "file_owner_etc_gshadow", "file_groupowner_etc_gshadow")),
    Subject("kernel modules", "dccp, sctp, rds, tipc cannot be loaded", ("MOD-*",),
            ("NETW-3200", ""), ("kernel_module_dccp_disabled", "kernel_module_sctp_disabled",
                                "kernel_module_rds_disabled", "kernel_module_tipc_disabled")),
    Subject("kernel modules", "usb-storage cannot be loaded", (), ("USB-1000", ""),
            ("kernel_module_usb-storage_disabled",)),
    Subject("sshd", "sshd running", ("PROC-008",), ("SSH-7402", ""),
            ("package_openssh-server_installed", "service_sshd_enabled")),
    Subject("sshd", "sshd_config mode and options", ("FILE-004",), ("SSH-7408", ""),
            ("sshd_disable_root_login", "sshd_disable_empty_passwords",
             "sshd_set_idle_timeout", "sshd_allow_only_protocol2")),
    Subject("services", "no telnet, rsh, inetd, rpcbind, avahi, cups",
            ("PROC-001", "PROC-002", "PROC-003", "PROC-004", "PROC-005", "PROC-006", "PROC-007"),
            ("INSE-8002", ""), ("package_telnetd_removed", "package_inetutils-telnetd_removed",
                                "package_telnetd-ssl_removed", "package_nis_removed")),
    Subject("listening ports", "only allowed listeners", ("PORT-001", "PORT-002"),
            ("NETW-3012", ""), ()),
    Subject("time sync", "clock synchronised by NTP/PTP", ("TIME-001", "TIME-002", "TIME-004"),
            ("TIME-3104", ""), ("package_ntp_installed", "service_ntp_enabled",
                                "package_chrony_installed", "service_chronyd_enabled")),
)


def hostguard_verdict(results: dict[str, dict[str, object]], ids: tuple[str, ...]) -> str:
    chosen = [r for r in results.values()
              if any(re.fullmatch(i.replace("*", ".*"), str(r["id"])) for i in ids)]
    if not chosen:
        return "—"
    return ", ".join(f"{r['id']} {r['status']}" for r in chosen)


def lynis_verdict(run: LynisRun | None, ref: tuple[str, str] | None) -> str:
    if run is None:
        return "(not run)"
    if ref is None:
        return "—"
    test, needle = ref
    for kind, found in (("warning", run.warnings), ("suggestion", run.suggestions)):
        if any(t == test and needle in text for t, text in found):
            return f"{test} {kind}"
    if test in run.performed:
        return f"{test} ok"
    if test in run.skipped:
        return f"{test} skipped"
    return f"{test} not run"


def oscap_verdict(results: dict[str, str] | None, rules: tuple[str, ...]) -> str:
    if results is None:
        return "(not run)"
    said = [f"{rule} {results[rule]}" for rule in rules
            if results.get(rule, "notselected") != "notselected"]
    return ", ".join(said) if said else "not in profile"


def agreement(*cells: str) -> str:
    """``conflict`` when one tool passes what another fails, else who decided."""
    decided = [{DECIDED[w] for w in re.findall(r"\b(pass|fail|ok|suggestion|warning)\b", cell)}
               for cell in cells]
    verdicts = set().union(*decided)
    if len(verdicts) > 1 and any(len(d) == 1 for d in decided):
        together = [d for d in decided if d]
        if len({frozenset(d) for d in together}) > 1:
            return "**conflict**"
    deciding = sum(1 for d in decided if d)
    if deciding == 0:
        return "none decides"
    return "agree" if deciding == len(cells) else f"{deciding} of {len(cells)} decide"


def sysctl_items(results: dict[str, dict[str, object]]) -> dict[str, str]:
    """sysctl key -> hostguard's verdict on it (from each sysctl check's evidence)."""
    keys: dict[str, str] = {}
    for r in results.values():
        if r["kind"] != "sysctl":
            continue
        evidence = r["evidence"]
        items = evidence.get("items") if isinstance(evidence, dict) else None
        if items:
            for item in items:
                keys[item["key"]] = f"{r['id']} {item['verdict']}"
        else:
            spec = r["spec"]
            key = spec.get("key", "?") if isinstance(spec, dict) else "?"
            keys[key] = f"{r['id']} {r['status']} (absent)"
    return keys


def oscap_sysctls(results: dict[str, str] | None) -> dict[str, str]:
    """sysctl rule suffix (dots as underscores) -> result, selected rules only."""
    if results is None:
        return {}
    return {rule.removeprefix("sysctl_"): result for rule, result in results.items()
            if rule.startswith("sysctl_") and result != "notselected"}


def sysctl_rows(results: dict[str, dict[str, object]], lynis: LynisRun | None,
                oscap: dict[str, str] | None) -> list[list[str]]:
    ours = sysctl_items(results)
    theirs = oscap_sysctls(oscap)
    lynis_keys = {k for k, v in (lynis.sysctls.items() if lynis else ()) if v != "absent"
                  or k in ours}
    # per-interface expansions of a hostguard wildcard only where another tool names them
    keys = {k for k in ours if not re.search(r"\.conf\.(?!all\.|default\.)", k)}
    keys |= lynis_keys | {k for k in ours if k.replace(".", "_") in theirs}
    rows = []
    for key in sorted(keys):
        mine = ours.get(key, "—")
        lyn = "(not run)" if lynis is None else lynis.sysctls.get(key, "—")
        osc = "(not run)" if oscap is None else theirs.get(key.replace(".", "_"), "—")
        rows.append([key, mine, lyn, osc, agreement(mine, lyn, osc)])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def counts(results: dict[str, dict[str, object]]) -> str:
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in results.values():
        by_kind[str(r["kind"])][str(r["status"])] += 1
    statuses = ("pass", "fail", "error", "not_applicable", "waived")
    rows = [[kind, *(str(c[s]) for s in statuses), str(sum(c.values()))]
            for kind, c in sorted(by_kind.items())]
    total = collections.Counter(str(r["status"]) for r in results.values())
    rows.append(["**all**", *(str(total[s]) for s in statuses), str(len(results))])
    return table(["kind", *statuses, "total"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where the tools write (default: a temp dir)")
    parser.add_argument("--profile", default=PROFILE)
    parser.add_argument("--datastream", type=Path, help="default: ssg-debian for this release")
    parser.add_argument("--lynis-from", type=Path, help="folder with lynis-report.dat, lynis.log")
    parser.add_argument("--oscap-from", type=Path, help="an XCCDF results file")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="baseline-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    lynis_ok = bool(args.lynis_from or shutil.which("lynis"))
    stream = datastream(args.datastream)
    oscap_ok = bool(args.oscap_from or (shutil.which("oscap") and stream))
    if not (lynis_ok or oscap_ok):
        print("baseline_compare: skipped: neither lynis nor oscap with ssg-debian content is "
              "installed (apt-get install lynis openscap-scanner ssg-debian)")
        return 0
    needs_root = (not args.lynis_from and lynis_ok) or (not args.oscap_from and oscap_ok)
    if needs_root and os.geteuid() != 0:
        print("baseline_compare: skipped: lynis and oscap read the whole host: run as root")
        return 0

    notes = [f"Host {os.uname().nodename}, Debian {release()}, kernel {os.uname().release}; "
             f"tool outputs in {out}."]
    results = run_hostguard(out)
    lynis: LynisRun | None = None
    if args.lynis_from:
        lynis = read_lynis(args.lynis_from)
    elif lynis_ok:
        lynis = run_lynis(out)
    else:
        notes.append("Lynis: skipped, not installed.")
    oscap: dict[str, str] | None = None
    if args.oscap_from:
        oscap = parse_oscap(args.oscap_from)
    elif oscap_ok and stream:
        oscap = run_oscap(stream, args.profile, out, "shipped")
        if all(r in ("notapplicable", "notselected") for r in oscap.values()):
            wide = out / stream.name.replace("-ds.xml", f"-as{release()}-ds.xml")
            changed = retarget(stream, wide, release())
            notes.append(f"oscap: {stream.name} as shipped: every rule notapplicable (no "
                         f"content for Debian {release()}); evaluated again as {wide.name}, "
                         f"its release test widened to {release()} ({changed} place(s)).")
            oscap = run_oscap(wide, args.profile, out, "retargeted")
    else:
        notes.append("oscap: skipped, openscap-scanner or ssg-debian not installed.")

    print("## Counts\n")
    print("\n".join(f"- {note}" for note in notes))
    print("\nhostguard (every shipped policy, `--label role=gateway`):\n")
    print(counts(results))
    if lynis:
        print(f"\nLynis: hardening index {lynis.hardening_index}, {lynis.tests_done} tests, "
              f"{len(lynis.warnings)} warnings, {len(lynis.suggestions)} suggestions.")
    if oscap is not None:
        tally = collections.Counter(r for r in oscap.values() if r != "notselected")
        print(f"\noscap, profile {args.profile.removeprefix('xccdf_org.ssgproject.content_')}: "
              + ", ".join(f"{n} {r}" for r, n in sorted(tally.items())) + ".")
    header = ["hostguard", "Lynis", "oscap", "agreement"]
    print("\n## Kernel sysctls (hostguard sysctl checks, Lynis KRNL-6000, oscap sysctl_*)\n")
    print(table(["key", *header], sysctl_rows(results, lynis, oscap)))
    print("\n## Other subjects\n")
    rows = []
    for s in SUBJECTS:
        cells = [hostguard_verdict(results, s.hostguard), lynis_verdict(lynis, s.lynis),
                 oscap_verdict(oscap, s.oscap)]
        rows.append([s.area, s.name, *cells, agreement(*cells)])
    print(table(["area", "subject", *header], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

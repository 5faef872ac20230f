"""hostguard's verdicts next to Lynis's and OpenSCAP's on the same host, subject by subject.

Runs the three tools on this host (root; each writes into ``--out``, never into the checkout):

* ``hostguard audit`` over every shipped policy with ``--label role=gateway --label
  benchmark=cis-debian``, so the opt-in policies (gateway listeners and time sync, the CIS
  Debian checks) are evaluated too; JSON result;
* ``lynis audit system --quick --no-colors``, its report file and log in ``--out``;
* ``oscap xccdf eval`` of the SCAP Security Guide data stream for this Debian release, one
  profile (ssg-debian has no CIS profile: ANSSI high covers most of hostguard's subjects).

ssg-debian ships content for older releases only (0.1.65 in Debian 12: Debian 10 and 11).
Without content for this release every rule is ``notapplicable``: the data stream's platform
test matches ``/etc/debian_version`` against ``^11.[0-9]+$``. The script then evaluates the
newest content again with only that pattern widened to this release, and says so. Where
``/.dockerenv`` or ``/run/.containerenv`` exists, oscap takes the host for a container and
skips every rule meant for a machine (sysctls, partitions, services): the script evaluates a
third time with those two paths renamed in the content's container test ("oscap as machine").
Every rewritten data stream is written to ``--out``.

Prints, in markdown, each tool's counts, then tables by subject (kernel sysctls key by key;
mounts, files, kernel modules, sshd, services, listening ports, time sync): hostguard's
verdict, Lynis's, oscap's, and whether they agree. Why they disagree is not guessed here:
docs/comparison.md explains each disagreement from what each tool read.

A tool that is not installed is skipped with a message (exit 0 without Lynis and oscap:
nothing to compare). ``--lynis-from DIR`` (``lynis-report.dat``, ``lynis.log``) and
``--oscap-from RESULTS.xml`` (repeatable) read earlier runs instead (Lynis takes minutes).

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
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
SSG = Path("/usr/share/xml/scap/ssg/content")
PROFILE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_high"
RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
PROFILE_PREFIX = "xccdf_org.ssgproject.content_profile_"
TESTRESULT_PREFIX = "xccdf_org.open-scap_testresult_"
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
RELEASE_TEST = re.compile(r"(<ind:pattern operation=\"pattern match\">\^)(\d+)(\.\[0-9\]\+\$)")
"""The ``installed_OS_is_debianNN`` test: ``^11.[0-9]+$`` matched against /etc/debian_version."""
CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")
"""What ssg's ``installed_env_is_a_container`` test looks for."""
LABELS = ("role=gateway", "benchmark=cis-debian")


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


def parse_lynis_report(text: str) -> tuple[str, str, list[tuple[str, str]],
                                           list[tuple[str, str]]]:
    """Hardening index, tests done, warnings and suggestions of a ``lynis-report.dat``."""
    values: dict[str, list[str]] = collections.defaultdict(list)
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name].append(value)

    def findings(name: str) -> list[tuple[str, str]]:
        # TEST|text|details|solution|
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


def parse_lynis_log(text: str) -> tuple[dict[str, str], set[str], set[str]]:
    """Per-key KRNL-6000 results, and the tests performed and skipped, of a ``lynis.log``."""
    sysctls: dict[str, str] = {}
    performed: set[str] = set()
    skipped: set[str] = set()
    for raw in text.splitlines():
        line = STAMP.sub("", raw)
        if started := PERFORMED.match(line):
            performed.add(started.group(1))
        elif gone := SKIPPED.match(line):
            skipped.add(gone.group(1))
        elif diff := SYSCTL_DIFF.match(line):
            sysctls[diff.group(1)] = f"fail (expected {diff.group(2)}, real {diff.group(3)})"
        elif equal := SYSCTL_EQUAL.match(line):
            sysctls[equal.group(1)] = "pass"
        elif absent := SYSCTL_ABSENT.match(line):
            sysctls[absent.group(1)] = "absent"
    return sysctls, performed, skipped


def read_lynis(folder: Path) -> LynisRun:
    index, done, warnings, suggestions = parse_lynis_report(
        (folder / "lynis-report.dat").read_text(errors="replace"))
    sysctls, performed, skipped = parse_lynis_log(
        (folder / "lynis.log").read_text(errors="replace"))
    return LynisRun(index, done, warnings, suggestions, sysctls, performed, skipped)


def parse_oscap(path: Path) -> tuple[str, dict[str, str]]:
    """The profile evaluated, and rule id (without the ssgproject prefix) -> result, from an
    XCCDF results file."""
    results: dict[str, str] = {}
    root = ET.parse(path).getroot()  # oscap's own output: no entity tricks to fear
    test = root if root.tag == f"{XCCDF}TestResult" else root.find(f"{XCCDF}TestResult")
    profile = "" if test is None else test.get("id", "").removeprefix(TESTRESULT_PREFIX)
    for rule in root.iter(f"{XCCDF}rule-result"):
        result = rule.find(f"{XCCDF}result")
        results[rule.get("idref", "").removeprefix(RULE_PREFIX)] = (
            "?" if result is None else result.text or "?")
    return profile.removeprefix(PROFILE_PREFIX), results


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


def rewrite(source: Path, target: Path, version: str | None, markers: tuple[str, ...]) -> int:
    """Copy ``source``: its release test widened to ``version``, container ``markers`` renamed
    (so oscap does not find them). Returns how many places changed."""
    text, count = source.read_text(), 0
    if version:
        text, count = RELEASE_TEST.subn(rf"\g<1>(\g<2>|{version})\g<3>", text)
    for marker in markers:
        old = f'<unix:filepath datatype="string">{marker}</unix:filepath>'
        count += text.count(old)
        text = text.replace(old, old.replace(marker, f"{marker}.not-read"))
    target.write_text(text)
    return count


def run_oscap(stream: Path, profile: str, out: Path, name: str) -> tuple[str, dict[str, str]]:
    results = out / f"oscap-{name}.xml"
    log = out / f"oscap-{name}.out"
    with log.open("w") as sink:
        # exit 2 = some rule failed; the results file is what counts
        subprocess.run(["oscap", "xccdf", "eval", "--profile", profile, "--results",
                        str(results), "--report", str(out / f"oscap-{name}.html"), str(stream)],
                       stdout=sink, stderr=subprocess.STDOUT, check=False)
    if not results.exists():
        raise SystemExit(f"baseline_compare: oscap wrote no results; see {log}")
    return parse_oscap(results)


def run_lynis(out: Path) -> LynisRun:
    with (out / "lynis.out").open("w") as sink:
        subprocess.run(["lynis", "audit", "system", "--quick", "--no-colors", "--logfile",
                        str(out / "lynis.log"), "--report-file", str(out / "lynis-report.dat")],
                       stdout=sink, stderr=subprocess.STDOUT, check=False)
    return read_lynis(out)


def run_hostguard(out: Path) -> dict[str, dict[str, Any]]:
    result = out / "hostguard.json"
    labels = [arg for label in LABELS for arg in ("--label", label)]
    done = subprocess.run([sys.executable, "-m", "agent", "audit", "--policy",
                           str(PROJECT / "policies"), *labels, "--format", "json", "-o",
                           str(result)], cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 3, 5):  # the audit ran; 2 = it did not
        raise SystemExit(f"baseline_compare: hostguard audit exited {done.returncode}: "
                         f"{done.stderr.strip()}")
    return {r["id"]: r for r in json.loads(result.read_text())["results"]}


# --- the comparison ---------------------------------------------------------------------------

VERDICT = re.compile(r"\b(pass|fail|no finding|suggestion|warning)\b")
DECIDED = {"pass": "pass", "no finding": "pass", "fail": "fail", "suggestion": "fail",
           "warning": "fail"}
"""Each tool's words for a decided verdict; anything else (error, n/a, skipped) abstains."""


@dataclasses.dataclass(frozen=True)
class Subject:
    """One thing the three tools can judge, and where each one does."""

    area: str
    name: str
    hostguard: tuple[str, ...]
    lynis: tuple[tuple[str, str], ...]
    """(test id, text its suggestion or warning carries for this subject, "" for any)."""
    oscap: tuple[str, ...]


SUBJECTS = (
    Subject("mounts", "/tmp a separate mount, nodev, nosuid", ("CIS-1.1.2.1.1", "MNT-001"),
            (("FILE-6310", "/tmp"),), ("partition_for_tmp",)),
    Subject("mounts", "/home a separate mount", ("CIS-1.1.2.3.1",), (("FILE-6310", "/home"),),
            ("partition_for_home",)),
    Subject("mounts", "/var a separate mount", ("CIS-1.1.2.4.1",), (("FILE-6310", "/var "),),
            ("partition_for_var",)),
    Subject("mounts", "/var/tmp a separate mount, nodev, nosuid", ("CIS-1.1.2.5.1", "MNT-003"),
            (("FILE-6376", ""),), ()),
    Subject("mounts", "/var/log, /var/log/audit separate mounts",
            ("CIS-1.1.2.6.1", "CIS-1.1.2.7.1"), (),
            ("partition_for_var_log", "partition_for_var_log_audit")),
    Subject("mounts", "/dev/shm nodev, nosuid, noexec", ("MNT-002",), (("FILE-6374", ""),),
            ("mount_option_dev_shm_nodev", "mount_option_dev_shm_nosuid",
             "mount_option_dev_shm_noexec")),
    Subject("files", "/etc/passwd, /etc/group 0644 root:root", ("FILE-002", "FILE-003"),
            (("FILE-7524", "/etc/passwd"),),
            ("file_permissions_etc_passwd", "file_owner_etc_passwd",
             "file_groupowner_etc_passwd", "file_permissions_etc_group")),
    Subject("files", "/etc/shadow, /etc/gshadow 0640 root:shadow", ("FILE-001",), (),
            ("file_permissions_etc_shadow", "file_owner_etc_shadow",
             "file_permissions_etc_gshadow", "file_owner_etc_gshadow")),
    Subject("files", "/etc/cron.d, cron.daily, cron.weekly 0700",
            ("CIS-2.4.1.4", "CIS-2.4.1.5", "CIS-2.4.1.7"), (("FILE-7524", ""),),
            ("file_permissions_cron_d", "file_permissions_cron_daily")),
    Subject("files", "core dumps off in limits.conf (fs.suid_dumpable: sysctls)",
            ("CIS-1.5.3-limits",), (("KRNL-5820", ""),), ()),
    Subject("kernel modules", "dccp, sctp, rds, tipc cannot be loaded",
            ("CIS-3.2.1", "CIS-3.2.2", "CIS-3.2.3", "CIS-3.2.4"), (("NETW-3200", ""),),
            ("kernel_module_dccp_disabled", "kernel_module_sctp_disabled",
             "kernel_module_rds_disabled", "kernel_module_tipc_disabled")),
    Subject("kernel modules", "usb-storage cannot be loaded", ("CIS-1.1.1.9",),
            (("USB-1000", ""),), ("kernel_module_usb-storage_disabled",)),
    Subject("sshd", "sshd running", ("PROC-008",), (("SSH-7402", ""),),
            ("package_openssh-server_installed", "service_sshd_enabled")),
    Subject("sshd", "sshd_config mode and settings", ("FILE-004", "CIS-5.1.*"),
            (("SSH-7408", ""),),
            ("sshd_disable_root_login", "sshd_disable_empty_passwords", "sshd_set_idle_timeout",
             "sshd_allow_only_protocol2", "sshd_set_keepalive_0")),
    Subject("services", "server services (CIS 2.1: avahi, cups, rpcbind, nfs, ...) not enabled",
            ("CIS-2.1.*", "CIS-3.1.3", "CIS-6.1.2.1.4-*"), (("BOOT-5177", ""),),
            ("service_snmpd_disabled", "service_netfs_disabled")),
    Subject("services", "no telnet, rsh, inetd server running",
            ("PROC-001", "PROC-002", "PROC-007"),
            (("INSE-8000", ""), ("INSE-8304", ""), ("INSE-8322", "")),
            ("package_telnetd_removed", "package_inetutils-telnetd_removed",
             "package_telnetd-ssl_removed")),
    Subject("listening ports", "only allowed listeners", ("PORT-001", "PORT-002"),
            (("NETW-3012", ""),), ()),
    Subject("time sync", "clock synchronised", ("TIME-001", "TIME-002"), (("TIME-3104", ""),),
            ("package_ntp_installed", "service_ntp_enabled")),
)


def hostguard_verdict(results: dict[str, dict[str, Any]], ids: tuple[str, ...]) -> str:
    chosen = [r for r in results.values()
              if any(re.fullmatch(re.escape(i).replace(r"\*", ".*"), r["id"]) for i in ids)]
    if not chosen:
        return "—"
    statuses = collections.Counter(r["status"] for r in chosen)
    if len(chosen) > 3 and len(statuses) == 1:  # a family of checks, one verdict
        return f"{len(chosen)} checks {chosen[0]['status']}"
    return ", ".join(f"{r['id']} {r['status']}" for r in chosen)


def lynis_verdict(run: LynisRun, refs: tuple[tuple[str, str], ...]) -> str:
    if not refs:
        return "—"
    said = []
    for test, needle in refs:
        for kind, found in (("warning", run.warnings), ("suggestion", run.suggestions)):
            if any(t == test and needle in text for t, text in found):
                said.append(f"{test} {kind}")
                break
        else:
            state = ("no finding" if test in run.performed else
                     "skipped" if test in run.skipped else "not run")
            said.append(f"{test} {state}")
    return ", ".join(said)


def oscap_verdict(results: dict[str, str], rules: tuple[str, ...]) -> str:
    said = [f"{rule} {results[rule]}" for rule in rules
            if results.get(rule, "notselected") != "notselected"]
    if not said:
        return "not in profile"
    results_of = collections.Counter(results[rule] for rule in rules if rule in results
                                     and results[rule] != "notselected")
    if len(said) > 2 and len(results_of) == 1:
        return f"{len(said)} rules {said[0].rsplit(' ', 1)[1]}"
    return ", ".join(said)


def agreement(cells: list[str]) -> str:
    """``conflict`` where one tool passes what another fails, else how many decide."""
    decided = [frozenset(DECIDED[w] for w in VERDICT.findall(cell)) for cell in cells]
    deciding = [d for d in decided if d]
    if len(set(deciding)) > 1:
        return "**conflict**"
    if not deciding:
        return "none decides"
    return "agree" if len(deciding) == len(cells) else f"{len(deciding)} of {len(cells)} decide"


def sysctl_items(results: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """sysctl key -> hostguard's verdicts on it (each sysctl check's evidence, key by key)."""
    keys: dict[str, list[str]] = collections.defaultdict(list)
    for r in results.values():
        if r["kind"] != "sysctl":
            continue
        items = r["evidence"].get("items") or []
        for item in items:
            keys[item["key"]].append(f"{r['id']} {item['verdict']}")
        if not items:
            keys[r["spec"]["key"]].append(f"{r['id']} {r['status']} ({r['evidence']['actual']})")
    return keys


def sysctl_rows(results: dict[str, dict[str, Any]], lynis: LynisRun | None,
                oscaps: dict[str, dict[str, str]]) -> list[list[str]]:
    ours = sysctl_items(results)
    theirs = {label: {rule.removeprefix("sysctl_"): result for rule, result in oscap.items()
                      if rule.startswith("sysctl_") and result != "notselected"}
              for label, oscap in oscaps.items()}
    named = set(lynis.sysctls if lynis else ()) | {
        key for key in ours if any(key.replace(".", "_") in rules for rules in theirs.values())}
    # hostguard's own keys, less per-interface expansions of a wildcard nobody else names
    keys = {k for k in ours if not re.search(r"\.conf\.(?!all\.|default\.)", k)} | named
    if lynis:
        keys -= {k for k, v in lynis.sysctls.items() if v == "absent" and k not in ours}
    rows = []
    for key in sorted(keys):
        cells = [", ".join(ours.get(key, ["—"]))]
        if lynis:
            cells.append(lynis.sysctls.get(key, "—"))
        cells += [rules.get(key.replace(".", "_"), "—") for rules in theirs.values()]
        rows.append([key, *cells, agreement(cells)])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def counts(results: dict[str, dict[str, Any]]) -> str:
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in results.values():
        by_kind[r["kind"]][r["status"]] += 1
    statuses = ("pass", "fail", "error", "not_applicable", "waived")
    rows = [[kind, *(str(c[s]) for s in statuses), str(sum(c.values()))]
            for kind, c in sorted(by_kind.items())]
    total = collections.Counter(r["status"] for r in results.values())
    rows.append(["**all**", *(str(total[s]) for s in statuses), str(len(results))])
    return table(["kind", *statuses, "total"], rows)


def oscap_runs(args: argparse.Namespace, out: Path,
               notes: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """(profile, results) by column label: the files given, else this host evaluated as the
    module docstring says."""
    if args.oscap_from:
        return {f"oscap {path.stem}": parse_oscap(path) for path in args.oscap_from}
    stream = datastream(args.datastream)
    if not (shutil.which("oscap") and stream):
        notes.append("oscap: skipped, openscap-scanner or ssg-debian content not installed.")
        return {}
    runs = {"oscap": run_oscap(stream, args.profile, out, "shipped")}
    version = None
    if all(r in ("notapplicable", "notselected") for r in runs["oscap"][1].values()):
        version = release()
        wide = out / stream.name.replace("-ds.xml", f"-as{version}-ds.xml")
        changed = rewrite(stream, wide, version, ())
        notes.append(f"oscap: {stream.name} as shipped: every rule notapplicable (its platform "
                     f"test wants another Debian release); evaluated again as {wide.name}, the "
                     f"release pattern widened to {version} ({changed} place(s)).")
        runs["oscap"] = run_oscap(wide, args.profile, out, "release")
    markers = tuple(m for m in CONTAINER_MARKERS if Path(m).exists())
    if markers:
        machine = out / stream.name.replace("-ds.xml", "-as-machine-ds.xml")
        changed = rewrite(stream, machine, version, markers)
        notes.append(f"oscap as machine: {', '.join(markers)} exists, so oscap skips every "
                     f"rule meant for a machine; evaluated again as {machine.name}, those "
                     f"paths renamed in its container test ({changed} place(s) changed).")
        runs["oscap as machine"] = run_oscap(machine, args.profile, out, "machine")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where the tools write (default: a temp dir)")
    parser.add_argument("--profile", default=PROFILE)
    parser.add_argument("--datastream", type=Path, help="default: ssg-debian for this release")
    parser.add_argument("--lynis-from", type=Path, help="folder with lynis-report.dat, lynis.log")
    parser.add_argument("--oscap-from", type=Path, action="append", help="XCCDF results file")
    args = parser.parse_args()
    lynis_there = bool(args.lynis_from or shutil.which("lynis"))
    oscap_there = bool(args.oscap_from or (shutil.which("oscap") and datastream(args.datastream)))
    if not (lynis_there or oscap_there):
        print("baseline_compare: skipped: neither lynis nor oscap with ssg-debian content is "
              "installed (apt-get install lynis openscap-scanner ssg-debian)")
        return 0
    runs_tools = (lynis_there and not args.lynis_from) or (oscap_there and not args.oscap_from)
    if runs_tools and os.geteuid() != 0:
        print("baseline_compare: skipped: lynis and oscap read the whole host: run as root")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="baseline-compare-"))
    out.mkdir(parents=True, exist_ok=True)

    host = os.uname()
    notes = [f"Host {host.nodename}, Debian {release()}, kernel {host.release}; tool outputs in "
             f"{out}."]
    results = run_hostguard(out)
    lynis = None
    if args.lynis_from:
        lynis = read_lynis(args.lynis_from)
    elif lynis_there:
        lynis = run_lynis(out)
    else:
        notes.append("Lynis: skipped, not installed.")
    runs = oscap_runs(args, out, notes)
    oscaps = {label: results for label, (_, results) in runs.items()}

    print("## Counts\n")
    print("\n".join(f"- {note}" for note in notes))
    print(f"\nhostguard, every shipped policy, {' '.join(f'--label {la}' for la in LABELS)}:\n")
    print(counts(results))
    if lynis:
        print(f"\nLynis: hardening index {lynis.hardening_index}, {lynis.tests_done} tests, "
              f"{len(lynis.warnings)} warning(s), {len(lynis.suggestions)} suggestion(s).")
    for label, (profile, oscap) in runs.items():
        tally = collections.Counter(r for r in oscap.values() if r != "notselected")
        print(f"\n{label}, profile {profile}: "
              + ", ".join(f"{n} {r}" for r, n in sorted(tally.items())) + ".")
    header = ["hostguard", *(["Lynis"] if lynis else []), *oscaps, "agreement"]
    print("\n## Kernel sysctls\n")
    print(table(["key", *header], sysctl_rows(results, lynis, oscaps)))
    print("\n## Other subjects\n")
    rows = []
    for s in SUBJECTS:
        cells = [hostguard_verdict(results, s.hostguard)]
        if lynis:
            cells.append(lynis_verdict(lynis, s.lynis))
        cells += [oscap_verdict(oscap, s.oscap) for oscap in oscaps.values()]
        rows.append([s.area, s.name, *cells, agreement(cells)])
    print(table(["area", "subject", *header], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``unit`` checks: settings of unit files merged with their drop-ins, and enablement.

Fixture roots are written per test (vendor units in ``/usr/lib``, overrides and drop-ins in
``/etc``, links in ``.wants/``) and read by the real readers; the oracles are systemd's own
tools run offline on the same trees: ``systemctl --root=DIR is-enabled`` for the state and
``systemd-analyze --root=DIR cat-config`` (the fragment and its drop-ins in the order systemd
applies them) for the settings. The live host's ``/lib/systemd/system`` units are judged too.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.unit import UnitKind
from agent.host.enablement import Install, unit_state
from agent.host.snapshot import SnapshotRequest, take
from agent.host.systemd_units import read_unit, read_units
from agent.host.unitfiles import UnitFiles, unit_names
from agent.result import Status
from tests.checks.test_unit_exposure import systemd_scores
from tests.host.test_unitfiles_empty import verify_dump
from tests.support import PROJECT, need, need_tool

KIND = UnitKind()
VENDOR = "usr/lib/systemd/system"
ETC = "etc/systemd/system"
RUN = "run/systemd/system"
SHIPPED = PROJECT / "packaging" / "systemd" / "hostguard.service"


def put(root: Path, path: str, text: str) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def link(root: Path, path: str, target: str) -> None:
    where = root / path
    where.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, where)


def judge(raw: dict[str, Any], root: Path) -> tuple[Status, str, list[dict[str, Any]]]:
    spec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, take(root, KIND.request(spec)))
    return outcome.status, outcome.message, [dict(r) for r in outcome.evidence.items]


@pytest.fixture
def gateway(tmp_path: Path) -> Path:
    """A gateway host: isolcpus=2-5; fixgw (vendor file, /etc drop-ins), mdfeed (a full
    override in /etc), risk (in no trading slice), a masked and a broken unit."""
    put(tmp_path, "proc/cmdline", "BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,2-5 "
        "nohz_full=2-5\n")
    put(tmp_path, "proc/self/mountinfo", "")  # no cgroup hierarchy: no partition isolates
    put(tmp_path, f"{VENDOR}/fixgw.service", """\
[Unit]
Description=FIX order gateway

[Service]
Slice=trading.slice
ExecStart=/opt/fix/bin/fixgw
NoNewPrivileges=no
CPUAffinity=2
LimitMEMLOCK=64M
Restart=on-failure

[Install]
WantedBy=multi-user.target
""")
    put(tmp_path, f"{ETC}/fixgw.service.d/10-hardening.conf",
        "[Service]\nNoNewPrivileges=on\nLimitMEMLOCK=infinity:infinity\nRestart=\n")
    put(tmp_path, f"{ETC}/fixgw.service.d/20-pin.conf", "[Service]\nCPUAffinity=3 4\n")
    link(tmp_path, f"{ETC}/multi-user.target.wants/fixgw.service", f"/{VENDOR}/fixgw.service")
    put(tmp_path, f"{VENDOR}/mdfeed.service",
        "[Service]\nSlice=trading.slice\nExecStart=/opt/md/bin/mdfeed\nCPUAffinity=0-5\n"
        "[Install]\nWantedBy=multi-user.target\n")
    put(tmp_path, f"{ETC}/mdfeed.service", """\
[Service]
Slice=trading-md.slice
ExecStart=/opt/md/bin/mdfeed
NoNewPrivileges=yes
CPUAffinity=
CPUAffinity=4,5
CPUAffinity=1
LimitMEMLOCK=infinity
Nice=-5
Nice=
""")
    put(tmp_path, f"{VENDOR}/risk.service", "[Service]\nExecStart=/opt/risk\n")
    link(tmp_path, f"{ETC}/rpcbind.service", "/dev/null")
    put(tmp_path, f"{VENDOR}/rpcbind.service", "[Service]\nExecStart=/sbin/rpcbind\n"
        "[Install]\nWantedBy=multi-user.target\n")
    return tmp_path


TRADING = {"unit": "*.service", "slice": "trading*.slice"}


def test_registered_and_request() -> None:
    assert isinstance(KINDS["unit"], UnitKind)
    spec = KIND.parse({"unit": "fixgw", "state": "enabled"})
    assert (spec.unit, spec.state) == ("fixgw.service", ("enabled",))
    assert KIND.request(spec) == SnapshotRequest(units=frozenset({"fixgw.service"}))
    spec = KIND.parse({**TRADING, "properties": {"Service": {"CPUAffinity": {
        "within": "isolated"}}}})
    assert KIND.request(spec) == SnapshotRequest(units=frozenset({"*.service"}), cmdline=True,
                                                 cgroups=True)


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ({"unit": "fixgw", "properties": {"Socket": {"Accept": True}}},
         [(("properties", "Socket"), "a .service unit has no [Socket] section")]),
        ({"unit": "fixgw", "properties": {"Service": {"Nice": {"within": "2-5"}}}},
         [(("properties", "Service", "Nice", "within"), "'within' is for CPU lists "
           "(AllowedCPUs, CPUAffinity, StartupAllowedCPUs), not Nice")]),
        ({"unit": "fixgw", "properties": {"Service": {"CPUAffinity": {"within": "2-x"}}}},
         [(("properties", "Service", "CPUAffinity", "within"),
           "invalid CPU list '2-x' (or 'isolated')")]),
        ({"unit": "fixgw", "properties": {"Service": {"Nice": {"set": True, "op": "eq",
                                                               "value": 1}}}},
         [(("properties", "Service", "Nice"), "an expectation holds one of 'set', "
           "'op'/'value' or 'within'")]),
        ({"unit": "fixgw"}, [((), "a unit check expects nothing: give properties, exposure or "
                               "state")]),
        ({"unit": "fixgw", "state": "absent", "properties": {"Service": {"Nice": 0}}},
         [(("state",), "'absent' allows no unit, whose settings cannot hold")]),
        ({"unit": "rpcbind.socket", "exposure": {"max": 2}},
         [(("exposure",), "exposure is assessed for services, not a .socket unit")]),
        ({"unit": "fix[gw", "state": "enabled"},
         [(("unit",), "invalid unit glob 'fix[gw': '[' at position 4 is never closed")]),
        ({**TRADING, "slice": "trading]", "state": "enabled"},
         [(("slice",), "invalid slice glob 'trading]': ']' at position 8 closes no '['")]),
        ({"unit": "fixgw", "state": "enabled", "missing": "not_applicable"},
         [(("missing",), "'missing' is for properties and exposure; a state check judges an "
           "absent unit by 'state'")]),
        ({"unit": "fixgw", "properties": {"Service": {"Nice": {"op": "ge", "value": "x"}}}},
         [(("properties", "Service", "Nice", "value"), "op 'ge' needs an integer value")]),
    ],
)
def test_spec_problems(raw: dict[str, Any], problems: list[tuple[tuple[Any, ...], str]]) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [(p.path, p.message) for p in caught.value.problems] == problems


def test_trading_units_pass_through_their_drop_ins(gateway: Path) -> None:
    status, message, rows = judge({**TRADING, "properties": {"Service": {
        "NoNewPrivileges": True, "LimitMEMLOCK": "infinity",
        "CPUAffinity": {"within": "isolated"}}}}, gateway)
    # fixgw: the /etc drop-ins win over the vendor file; CPUAffinity= lines add up (2, 3 4).
    found = {(r["unit"], r["expectation"]): (r["verdict"], r["finding"]) for r in rows}
    assert found[("fixgw.service", "Service.NoNewPrivileges is yes")] == (
        "pass", f"fixgw.service: NoNewPrivileges=on (/{ETC}/fixgw.service.d/10-hardening.conf:2)")
    assert found[("fixgw.service", "Service.LimitMEMLOCK = infinity")][0] == "pass"
    assert found[("fixgw.service", "Service.CPUAffinity within the isolated CPUs")] == (
        "pass", f"fixgw.service: CPUAffinity=2-4 (within 2-5) (/{VENDOR}/fixgw.service:8, "
        f"/{ETC}/fixgw.service.d/20-pin.conf:2)")
    # mdfeed: /etc's full file hides the vendor's; the empty CPUAffinity= resets, then 4,5 and 1.
    assert found[("mdfeed.service", "Service.CPUAffinity within the isolated CPUs")] == (
        "fail", f"mdfeed.service: CPUAffinity=1,4-5 (CPUs 1 outside 2-5) (/{ETC}/mdfeed.service:5, "
        f"/{ETC}/mdfeed.service:6, /{ETC}/mdfeed.service:7)")
    assert {unit for unit, _ in found} == {"fixgw.service", "mdfeed.service"}  # not risk
    assert status is Status.FAIL
    assert message == found[("mdfeed.service", "Service.CPUAffinity within the isolated CPUs")][1]


@pytest.mark.parametrize(("cmdline", "verdict"), [
    ("isolcpus=domain,2-5", "pass"),
    ("nohz_full=2-5", "fail"),             # no tick, but the scheduler still balances them
    ("isolcpus=managed_irq,2-5", "fail"),  # kept free of managed IRQs only
    ("", "fail"),
])
def test_within_isolated_means_out_of_load_balancing(tmp_path: Path, cmdline: str,
                                                     verdict: str) -> None:
    put(tmp_path, "proc/cmdline", f"BOOT_IMAGE=/vmlinuz {cmdline}\n")
    put(tmp_path, "proc/self/mountinfo", "")
    put(tmp_path, f"{VENDOR}/fixgw.service", "[Service]\nSlice=trading.slice\n"
        "ExecStart=/opt/fix/bin/fixgw\nCPUAffinity=2 3\n")
    status, _, rows = judge({**TRADING, "properties": {"Service": {
        "CPUAffinity": {"within": "isolated"}}}}, tmp_path)
    assert ([r["verdict"] for r in rows], status.value) == ([verdict], verdict)


def test_within_isolated_with_unreadable_cgroups_is_an_error(tmp_path: Path) -> None:
    # An isolated partition may be what pins the unit: without the cgroups, no answer.
    put(tmp_path, "proc/cmdline", "BOOT_IMAGE=/vmlinuz isolcpus=domain,2-5\n")
    put(tmp_path, f"{VENDOR}/fixgw.service", "[Service]\nSlice=trading.slice\n"
        "ExecStart=/opt/fix/bin/fixgw\nCPUAffinity=2 3\n")
    status, message, _ = judge({**TRADING, "properties": {"Service": {
        "CPUAffinity": {"within": "isolated"}}}}, tmp_path)
    assert status is Status.ERROR
    assert "cannot read the cgroups" in message


@pytest.mark.parametrize(
    ("expectation", "verdict"), [({"set": True}, "fail"), ({"set": False}, "pass"), (0, "fail")])
def test_an_empty_assignment_resets(gateway: Path, expectation: Any, verdict: str) -> None:
    _, _, rows = judge({"unit": "mdfeed", "properties": {"Service": {"Nice": expectation}}},
                       gateway)
    assert [(r["verdict"], r["finding"]) for r in rows] == [
        (verdict, f"mdfeed.service: Nice reset to the default (/{ETC}/mdfeed.service:10)")]


def test_an_empty_assignment_systemd_ignores(gateway: Path) -> None:
    # Restart= in fixgw's drop-in: "Failed to parse service restart specifier, ignoring".
    _, _, rows = judge({"unit": "fixgw", "properties": {"Service": {"Restart": "on-failure"}}},
                       gateway)
    assert [(r["verdict"], r["finding"]) for r in rows] == [
        ("pass", f"fixgw.service: Restart=on-failure (/{VENDOR}/fixgw.service:10)")]
    _, _, rows = judge({"unit": "mdfeed", "properties": {"Service": {"Restart": {"set": True}}}},
                       gateway)
    assert [(r["verdict"], r["finding"]) for r in rows] == [
        ("fail", "mdfeed.service: Restart not set")]


@pytest.mark.parametrize(
    ("key", "expectation", "verdict"),
    [
        ("LimitMEMLOCK", "infinity", "pass"),           # infinity:infinity in the drop-in
        ("LimitMEMLOCK", {"op": "ge", "value": 1 << 30}, "pass"),
        ("LimitMEMLOCK", "64M", "fail"),
        ("NoNewPrivileges", False, "fail"),
        ("Restart", {"op": "in", "value": ["always", "on-failure"]}, "pass"),
        ("Restart", {"set": True}, "pass"),
        ("Nice", {"set": True}, "fail"),                 # never set: systemd's default unknown
        ("Nice", {"set": False}, "pass"),
        ("Nice", 0, "fail"),
        ("CPUAffinity", {"within": "2-3"}, "fail"),     # 4 is outside
        ("CPUAffinity", {"within": "0-7"}, "pass"),
        ("ExecStart", {"op": "regex", "value": "/opt/fix/.*"}, "pass"),
    ],
)
def test_expectations(gateway: Path, key: str, expectation: Any, verdict: str) -> None:
    _, _, rows = judge({"unit": "fixgw", "properties": {"Service": {key: expectation}}}, gateway)
    assert [r["verdict"] for r in rows] == [verdict], rows


def test_limits_in_sizes_and_booleans_in_any_spelling(tmp_path: Path) -> None:
    put(tmp_path, f"{VENDOR}/a.service", "[Service]\nExecStart=/a\nLimitMEMLOCK=64M:1G\n"
        "PrivateTmp=1\nProtectHome=TRUE\nNoNewPrivileges=maybe\n")
    _, _, rows = judge({"unit": "a", "properties": {"Service": {
        "LimitMEMLOCK": "67108864:1073741824", "PrivateTmp": True, "ProtectHome": True,
        "NoNewPrivileges": True}}}, tmp_path)
    assert [r["verdict"] for r in rows] == ["pass", "pass", "pass", "error"]
    assert rows[3]["finding"].endswith(": 'maybe' is not a boolean")


def test_an_alias_is_judged_once(gateway: Path) -> None:
    put(gateway, f"{VENDOR}/fixgw.service", (gateway / VENDOR / "fixgw.service").read_text(
        encoding="utf-8") + "Alias=orders.service\n")
    link(gateway, f"{ETC}/orders.service", f"/{VENDOR}/fixgw.service")
    _, _, rows = judge({**TRADING, "state": ["enabled", "alias", "static", "disabled"],
                        "properties": {"Service": {"NoNewPrivileges": True}}}, gateway)
    assert [(r["unit"], r["expectation"]) for r in rows] == [
        ("fixgw.service", "state"), ("fixgw.service", "Service.NoNewPrivileges is yes"),
        ("mdfeed.service", "state"), ("mdfeed.service", "Service.NoNewPrivileges is yes"),
        ("orders.service", "state")]
    assert rows[-1]["finding"] == "orders.service: alias"
    # Named on its own, an alias is judged: its settings are the unit's.
    _, _, rows = judge({"unit": "orders", "properties": {"Service": {"NoNewPrivileges": True}}},
                       gateway)
    assert [r["verdict"] for r in rows] == ["pass"]


def test_a_unit_that_is_not_there(gateway: Path) -> None:
    raw: dict[str, Any] = {"unit": "nosuch", "properties": {"Service": {"NoNewPrivileges": True}}}
    assert judge(raw, gateway)[:2] == (Status.FAIL, "nosuch.service: not found")
    assert judge({**raw, "missing": "not_applicable"}, gateway)[:2] == (
        Status.NOT_APPLICABLE, "nosuch.service: not found")
    assert judge({**raw, "unit": "rpcbind"}, gateway)[:2] == (Status.FAIL,
                                                               "rpcbind.service: masked")
    assert judge({**TRADING, "slice": "hft.slice", "properties": {"Service": {
        "Restart": {"set": True}}}}, gateway)[:2] == (
        Status.FAIL, "no unit matches *.service with Slice= hft.slice")


def test_a_unit_systemd_would_refuse_is_an_error(gateway: Path) -> None:
    put(gateway, f"{ETC}/fixgw.service.d/30-bad.conf", "[Service]\nNice=1\n[Service\n")
    status, message, _ = judge({"unit": "fixgw", "properties": {"Service": {"Nice": 1}}},
                               gateway)
    assert status is Status.ERROR
    assert message.startswith(f"cannot evaluate: fixgw.service: /{ETC}/fixgw.service.d/"
                              "30-bad.conf:3:")


def test_state(gateway: Path) -> None:
    assert judge({"unit": "fixgw", "state": "enabled"}, gateway)[:2] == (
        Status.PASS, "fixgw.service: state enabled holds")
    assert judge({"unit": "rpcbind", "state": ["disabled", "masked", "absent"]},
                 gateway)[0] is Status.PASS
    assert judge({"unit": "nfs-server", "state": ["disabled", "masked", "absent"]},
                 gateway)[0] is Status.PASS
    # /etc's copy of mdfeed hides the vendor file and its [Install]: static, as systemctl says.
    assert judge({"unit": "mdfeed", "state": ["disabled", "masked", "absent"]}, gateway)[:2] == (
        Status.FAIL, "mdfeed.service: static")
    status, message, rows = judge({"unit": "*.service", "state": ["enabled", "static"]},
                                  gateway)
    assert status is Status.FAIL
    assert [r["finding"] for r in rows if r["verdict"] == "fail"] == ["rpcbind.service: masked"]
    assert message == "rpcbind.service: masked"
    assert judge({"unit": "telnet*", "state": "absent"}, gateway)[0] is Status.PASS
    assert judge({"unit": "telnet*", "state": "disabled"}, gateway)[:2] == (
        Status.FAIL, "no unit matches telnet*.service")


# --- oracles ---------------------------------------------------------------------------------


def _states(root: Path, names: list[str]) -> dict[str, str]:
    """``systemctl --root=ROOT is-enabled NAME`` for each name (``not-found`` when it has no
    unit file; any other failure kept as systemctl printed it)."""
    tool = need_tool("systemctl")
    found = {}
    for name in names:
        # Without a service manager running, systemctl reads the files for / as for a root.
        where = [f"--root={root}"] if root != Path("/") else []
        done = subprocess.run([tool, *where, "is-enabled", name], capture_output=True,
                              text=True, timeout=60, check=False)
        word = done.stdout.strip()
        found[name] = word or ("not-found" if "No such file" in done.stderr
                               else done.stderr.strip())
    return found


def _ours(root: Path, names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        state = read_unit(root, name).state
        found[name] = state if isinstance(state, str) else f"error: {state.reason}"
    return found


def _scenarios(root: Path) -> list[str]:
    """One unit per way systemctl tells the state; returns their names."""
    install = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    plain = "[Service]\nExecStart=/bin/true\n"
    for name in ("en", "dis", "ind", "ov", "rt"):
        put(root, f"{VENDOR}/{name}.service", install)
    link(root, f"{ETC}/multi-user.target.wants/en.service", f"/{VENDOR}/en.service")
    link(root, f"{ETC}/sockets.target.wants/other.service", f"/{VENDOR}/ind.service")
    put(root, f"{ETC}/ov.service", plain)  # an /etc copy; still enabled by its link
    link(root, f"{ETC}/multi-user.target.wants/ov.service", f"/{VENDOR}/ov.service")
    link(root, f"{RUN}/multi-user.target.wants/rt.service", f"/{VENDOR}/rt.service")
    put(root, f"{VENDOR}/st.service", plain)
    put(root, f"{VENDOR}/vend.service", plain)
    link(root, f"{VENDOR}/multi-user.target.wants/vend.service", "../vend.service")
    put(root, f"{VENDOR}/m.service", install)
    link(root, f"{ETC}/m.service", "/dev/null")
    put(root, f"{VENDOR}/mr.service", plain)
    link(root, f"{RUN}/mr.service", "/dev/null")
    put(root, f"{VENDOR}/empty.service", "")
    put(root, f"{VENDOR}/also.service", "[Service]\nExecStart=/bin/true\n[Install]\n"
        "Also=dis.service\n")
    put(root, f"{VENDOR}/al.service", install + "Alias=al2.service\n")
    link(root, f"{ETC}/al2.service", f"/{VENDOR}/al.service")
    put(root, "opt/lk.service", install)
    link(root, f"{ETC}/lk.service", "/opt/lk.service")
    link(root, f"{ETC}/rel.service", "../../../opt/lk.service")
    put(root, f"{VENDOR}/same.service", install)
    link(root, f"{ETC}/same.service", f"/{VENDOR}/same.service")
    link(root, f"{ETC}/dangling.service", "/opt/nothing.service")
    put(root, f"{VENDOR}/tpl@.service", install + "DefaultInstance=one\n")
    link(root, f"{ETC}/multi-user.target.wants/tpl@one.service", f"/{VENDOR}/tpl@.service")
    put(root, f"{VENDOR}/tp2@.service", install)
    link(root, f"{ETC}/multi-user.target.wants/tp2@x.service", f"/{VENDOR}/tp2@.service")
    put(root, f"{VENDOR}/dropin.service", plain)
    put(root, f"{ETC}/dropin.service.d/install.conf", "[Install]\nWantedBy=multi-user.target\n")
    put(root, f"{VENDOR}/rpcbind.socket", "[Socket]\nListenStream=111\n[Install]\n"
        "WantedBy=sockets.target\n")
    link(root, f"{ETC}/sockets.target.wants/rpcbind.socket", f"/{VENDOR}/rpcbind.socket")
    # Links systemctl 252 does not count: in vendor folders, system.control, system.attached.
    put(root, f"{VENDOR}/va.service", install)
    link(root, f"{VENDOR}/va-alias.service", "va.service")
    put(root, f"{VENDOR}/vw.service", install)
    link(root, f"{VENDOR}/multi-user.target.wants/vw.service", "../vw.service")
    put(root, f"{VENDOR}/ctl.service", install)
    link(root, "etc/systemd/system.control/multi-user.target.wants/ctl.service",
         f"/{VENDOR}/ctl.service")
    put(root, f"{VENDOR}/att.service", plain)
    link(root, "etc/systemd/system.attached/att-alias.service", f"/{VENDOR}/att.service")
    put(root, f"{VENDOR}/ea.service", plain)
    link(root, f"{ETC}/ea-alias.service", f"/{VENDOR}/ea.service")
    put(root, f"{VENDOR}/gen.service", install)
    link(root, "run/systemd/generator/multi-user.target.wants/gen.service",
         f"/{VENDOR}/gen.service")
    link(root, f"{ETC}/severed.service", f"/{VENDOR}/gone.service")
    return ["va.service", "vw.service", "ctl.service", "att.service", "ea.service",
            "gen.service", "severed.service", "en.service", "dis.service", "ind.service",
            "ov.service", "rt.service",
            "st.service", "vend.service", "m.service", "mr.service", "empty.service",
            "also.service", "al.service", "al2.service", "lk.service", "rel.service",
            "same.service", "dangling.service", "tpl@.service", "tpl@one.service",
            "tpl@two.service", "tp2@.service", "tp2@x.service", "dropin.service",
            "rpcbind.socket", "none.service"]


def test_state_as_systemctl_is_enabled_says(tmp_path: Path) -> None:
    names = _scenarios(tmp_path)
    theirs = _states(tmp_path, names)
    _agree(theirs, _ours(tmp_path, names))
    # Every word the scenarios are there for was met.
    assert set(theirs.values()) >= {"enabled", "disabled", "static", "masked", "indirect",
                                    "alias", "linked", "enabled-runtime", "masked-runtime",
                                    "not-found"}


def _agree(theirs: dict[str, str], ours: dict[str, str]) -> None:
    for name, word in theirs.items():
        if word.startswith("Failed"):  # systemctl refuses: so do we
            assert ours[name].startswith("error: "), (name, ours[name], word)
        else:
            assert ours[name] == word, (name, ours[name], word)


def test_state_of_this_hosts_units() -> None:
    root = Path("/")
    need(Path("/lib/systemd/system").is_dir(), "no systemd units on this host")
    names = unit_names(root)
    assert len(names) > 20
    _agree(_states(root, names), _ours(root, names))


_HEADER = re.compile(r"^# (/.*)$")


def _cat_config(root: Path, name: str) -> list[tuple[str, str, str]]:
    """(section, key, value) as ``systemd-analyze cat-config`` shows the fragment and its
    drop-ins, in the order systemd applies them."""
    done = subprocess.run([need_tool("systemd-analyze"), f"--root={root}", "cat-config",
                           f"systemd/system/{name}"], capture_output=True, text=True, timeout=60,
                          check=True)
    found: list[tuple[str, str, str]] = []
    section = ""
    for line in done.stdout.splitlines():
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("["):
            section = text.strip("[]")
            continue
        key, _, value = text.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def test_settings_as_systemd_analyze_cat_config_shows_them(gateway: Path) -> None:
    for name in ("fixgw.service", "mdfeed.service", "risk.service"):
        theirs = _cat_config(gateway, name)
        files = read_unit(gateway, name).files
        assert isinstance(files, UnitFiles), name
        assert [(a.section, a.key, a.value) for a in files.assignments] == theirs


def test_settings_as_systemds_own_dump_shows_them(gateway: Path) -> None:
    # systemd-analyze verify loads the units with this host's systemd and dumps what it made
    # of them: the values the checks judged must be those.
    out = verify_dump(gateway, ["fixgw.service", "mdfeed.service"])
    blocks = dict(re.findall(r"(?ms)^\s*-> Unit (\S+):\n(.*?)(?=^\s*-> Unit |\Z)", out))
    for name, cpus, restart, memlock in (("fixgw.service", "2-4", "on-failure", "infinity"),
                                         ("mdfeed.service", "1,4-5", "no", "infinity")):
        dump = dict(re.findall(r"(?m)^\t\t(\w+): (.*)$", blocks[name]))
        assert dump["CPUAffinity"].replace(" ", ",") == cpus
        assert dump["Restart"] == restart
        assert dump["LimitMEMLOCK"] == dump["LimitMEMLOCKSoft"] == str(2**64 - 1)  # infinity
        _, _, rows = judge({"unit": name, "properties": {"Service": {
            "CPUAffinity": {"within": cpus}, "LimitMEMLOCK": memlock}}}, gateway)
        assert [r["verdict"] for r in rows] == ["pass", "pass"], rows
        assert rows[0]["value"].startswith(f"{cpus} ")
        files = read_unit(gateway, name).files
        assert isinstance(files, UnitFiles)
        assert (files.last("Service", "Restart") or "no") == restart


def test_exposure_as_systemd_analyze_security_scores_it(gateway: Path) -> None:
    put(gateway, f"{ETC}/hostguard.service", SHIPPED.read_text(encoding="utf-8"))
    names = ["hostguard.service", "fixgw.service", "mdfeed.service"]
    theirs = systemd_scores(gateway, names)
    assert set(theirs) == set(names)
    for name in names:
        score = float(theirs[name])
        for limit, verdict in ((score, "pass"), (round(score - 0.1, 1), "fail")):
            status, message, rows = judge({"unit": name, "exposure": {"max": limit}}, gateway)
            assert [(r["verdict"], r["value"]) for r in rows] == [(verdict, score)], name
            assert message.startswith(f"{name}: exposure {theirs[name]} ") or verdict == "pass"
    # The shipped unit is hardened; the fixture's trading units are not.
    assert float(theirs["hostguard.service"]) < 2.5 < float(theirs["fixgw.service"])
    status, message, _ = judge({**TRADING, "exposure": {"max": 2.5}}, gateway)
    assert status is Status.FAIL
    assert re.fullmatch(r"fixgw\.service: exposure \d\.\d \w+ > 2\.5; most: .*; "
                        r"mdfeed\.service: exposure .*", message), message


def test_exposure_of_what_is_no_service_or_not_there(gateway: Path) -> None:
    put(gateway, f"{VENDOR}/md.socket", "[Socket]\nListenStream=9000\n")
    status, message, _ = judge({"unit": "md.*", "exposure": {"max": 5}}, gateway)
    assert (status, message) == (Status.ERROR, "cannot evaluate: md.socket: no exposure score: "
                                 "md.socket is not a service unit")
    assert judge({"unit": "rpcbind", "exposure": {"max": 5}}, gateway)[:2] == (
        Status.FAIL, "rpcbind.service: masked")


def test_the_shipped_unit_under_etc(tmp_path: Path) -> None:
    put(tmp_path, f"{ETC}/hostguard.service", SHIPPED.read_text(encoding="utf-8"))
    link(tmp_path, f"{ETC}/multi-user.target.wants/hostguard.service",
         f"/{ETC}/hostguard.service")
    status, _, rows = judge({"unit": "hostguard", "state": "enabled", "properties": {"Service": {
        "NoNewPrivileges": True, "Restart": {"set": True}, "ProtectSystem": "strict",
        "LimitMEMLOCK": "infinity"}}}, tmp_path)
    assert [r["verdict"] for r in rows] == ["pass", "pass", "pass", "pass", "fail"]
    assert rows[-1]["finding"] == "hostguard.service: LimitMEMLOCK not set"
    assert status is Status.FAIL
    assert _states(tmp_path, ["hostguard.service"]) == {"hostguard.service": "enabled"}
    assert read_units(tmp_path, "host*").units[0].name == "hostguard.service"


def test_this_hosts_vendor_units() -> None:
    # Every unit of /lib/systemd/system is read without a refusal, and cat-config agrees.
    root = Path("/")
    names = [n for n in unit_names(root) if n.endswith(".service") and "@" not in n][:40]
    assert names
    for name in names:
        files = read_unit(root, name).files
        assert isinstance(files, UnitFiles), name
        if len(files.names) > 1:
            continue  # cat-config reads the drop-ins of one name, systemd of every alias
        theirs = _cat_config(root, name)
        assert [(a.section, a.key, a.value) for a in files.assignments] == theirs, name


def test_install_of() -> None:
    assert Install(True, False, (), None) != Install(False, False, (), None)
    assert unit_state(Path("/nonexistent-root"), "x.service", lambda n: Install(
        False, False, (), None)) == "not-found"


def test_a_unit_two_patterns_select_is_read_once(gateway: Path) -> None:
    snapshot = take(gateway, SnapshotRequest(units=frozenset({"fixgw.service", "*.service"})))
    [alone] = snapshot.units["fixgw.service"].units
    [globbed] = [u for u in snapshot.units["*.service"].units if u.name == "fixgw.service"]
    assert alone.files is globbed.files  # one reading, shared by both checks

"""proxmoxer, unchanged from PyPI, against tasktrack's Proxmox VE simulator.

Usage: python3 proxmoxer_check.py path/to/tasktrack-sim

Runs proxmoxer's own calls (Tasks.blocking_status, Tasks.decode_log,
Tasks.decode_upid, the node task list with every filter pve-manager's
PVE/API2/Tasks.pm has, log paging including limit=0, token auth, ticket auth
with a write that needs the CSRF token, a stop, PVE-style errors) and prints
`proxmoxer: N passed, M failed`; exits 1 when a check failed.
"""
import subprocess
import sys
import traceback

import requests
import urllib3
from proxmoxer import ProxmoxAPI
from proxmoxer.core import AuthenticationError, ResourceException
from proxmoxer.tools import Tasks

urllib3.disable_warnings()

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


class Sim:
    """The simulator process and the tasks created in it."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--vendor", "proxmox", "--tls", "--port", "0", "--nodes", "pve1,pve2",
             "--token-id", "root@pam!ci", "--token-secret", "ci-secret", "--password", "ci-password",
             "--manual-clock"],
            stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]
        self.host, port = self.url.split("//")[1].rsplit(":", 1)
        self.port = int(port)
        self.tasks = {}

    def create(self, name, spec):
        r = requests.post(f"{self.url}/_sim/tasks", json=spec, verify=False, timeout=10)
        r.raise_for_status()
        self.tasks[name] = r.json()["id"]

    def advance(self, ms):
        """Moves the simulator's manual clock: tasks end without waiting."""
        requests.post(f"{self.url}/_sim/clock/advance?ms={ms}", verify=False, timeout=10).raise_for_status()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def api_token(sim):
    return ProxmoxAPI(sim.host, port=sim.port, user="root@pam", token_name="ci", token_value="ci-secret",
                      verify_ssl=False)


def node_list(prox, **params):
    return prox.nodes("pve1").tasks.get(**params)


def upids(entries):
    return [e["upid"] for e in entries]


def setup(sim):
    node1 = {"node": "pve1"}
    sim.create("quick", {"kind": "vzcreate", "duration_ms": 1500, "outcome": {"outcome": "warnings", "count": 1},
                         "attrs": {**node1, "id": "123"}})
    sim.create("long", {"kind": "qmigrate", "duration_ms": 600000, "attrs": {**node1, "id": "101"}})
    sim.create("logged", {"kind": "vzdump", "duration_ms": 300, "attrs": {**node1, "id": "100"},
                          "log": [f"INFO: line {i}" for i in range(1, 121)]})
    sim.create("failed", {"kind": "vzdump", "duration_ms": 200, "attrs": {**node1, "id": "102"},
                          "outcome": {"outcome": "failure", "message": "job errors"}})
    sim.create("token", {"kind": "aptupdate", "duration_ms": 600000, "attrs": {**node1, "user": "root@pam!ci"}})
    sim.create("elsewhere", {"kind": "qmstart", "duration_ms": 200, "attrs": {"node": "pve2", "id": "104"}})
    sim.advance(2000)  # every short task has ended; the 600 s ones run


@check
def decode_upid(sim, prox):
    d = Tasks.decode_upid(sim.tasks["quick"])
    assert (d["node"], d["type"], d["id"], d["user"]) == ("pve1", "vzcreate", "123", "root@pam"), d


@check
def blocking_status_waits_for_stopped(sim, prox):
    status = Tasks.blocking_status(prox, sim.tasks["quick"], timeout=60, polling_interval=0.2)
    assert status is not None, "blocking_status timed out"
    assert status["status"] == "stopped" and status["exitstatus"] == "WARNINGS: 1", status
    assert status["upid"] == sim.tasks["quick"], status


@check
def blocking_status_polls_until_the_task_ends(sim, prox):
    sim.create("ticking", {"kind": "vzcreate", "duration_ms": 1000, "attrs": {"node": "pve2", "id": "105"}})
    polls = []
    original = prox.nodes

    def counting(node):
        polls.append(node)
        if len(polls) > 1:
            sim.advance(300)  # the task's time moves only between polls
        return original(node)

    prox.nodes = counting
    try:
        status = Tasks.blocking_status(prox, sim.tasks["ticking"], timeout=60, polling_interval=0.05)
    finally:
        prox.nodes = original
    assert status["status"] == "stopped" and status["exitstatus"] == "OK", status
    assert len(polls) >= 4, polls


@check
def blocking_status_times_out_with_none(sim, prox):
    assert Tasks.blocking_status(prox, sim.tasks["long"], timeout=1, polling_interval=0.2) is None


@check
def log_limit_zero_reads_the_whole_log(sim, prox):
    log = prox.nodes("pve1").tasks(sim.tasks["logged"]).log.get(start=0, limit=0)
    text = Tasks.decode_log(log)
    lines = text.splitlines()
    assert len(lines) == 121 and lines[0] == "INFO: line 1" and lines[-1] == "TASK OK", lines[-3:]


@check
def log_pages_join_into_the_whole_log(sim, prox):
    pages = []
    for start in (0, 50, 100):
        pages += prox.nodes("pve1").tasks(sim.tasks["logged"]).log.get(start=start, limit=50)
    assert [line["n"] for line in pages] == list(range(1, 122)), [line["n"] for line in pages][-3:]
    whole = prox.nodes("pve1").tasks(sim.tasks["logged"]).log.get(start=0, limit=0)
    assert Tasks.decode_log(pages) == Tasks.decode_log(whole)


@check
def log_of_an_unknown_upid_is_one_line(sim, prox):
    unknown = "UPID:pve1:00000001:00000001:00000001:vzdump:1:root@pam:"
    log = prox.nodes("pve1").tasks(unknown).log.get()
    assert log == [{"n": 1, "t": "unable to open file - No such file or directory"}], log


@check
def list_archive_by_default(sim, prox):
    got = set(upids(node_list(prox)))
    want = {sim.tasks[n] for n in ("quick", "logged", "failed")}
    assert got == want, got


@check
def list_active_marks_running(sim, prox):
    active = node_list(prox, source="active")
    assert set(upids(active)) == {sim.tasks["long"], sim.tasks["token"]}, upids(active)
    assert all(e["status"] == "RUNNING" and e["saved"] == "0" and "endtime" not in e for e in active), active


@check
def list_all_puts_active_first(sim, prox):
    everything = node_list(prox, source="all")
    assert upids(everything)[:2] == [sim.tasks["long"], sim.tasks["token"]], upids(everything)
    assert len(everything) == 5
    assert all("endtime" in e for e in everything[2:]), everything


@check
def list_start_and_limit(sim, prox):
    assert len(node_list(prox, source="all", limit=2)) == 2
    assert node_list(prox, source="all", limit=0) == []
    assert upids(node_list(prox, source="all", start=1, limit=1)) == [sim.tasks["token"]]


@check
def list_since_and_until(sim, prox):
    starts = [e["starttime"] for e in node_list(prox, source="all")]
    assert node_list(prox, source="all", since=max(starts) + 1) == []
    assert node_list(prox, source="all", until=min(starts) - 1) == []
    assert len(node_list(prox, source="all", since=min(starts), until=max(starts))) == 5


@check
def list_statusfilter(sim, prox):
    assert upids(node_list(prox, statusfilter="error")) == [sim.tasks["failed"]]
    assert upids(node_list(prox, statusfilter="warning")) == [sim.tasks["quick"]]
    assert upids(node_list(prox, statusfilter="ok")) == [sim.tasks["logged"]]
    unknown = node_list(prox, source="all", statusfilter="unknown")
    assert set(upids(unknown)) == {sim.tasks["long"], sim.tasks["token"]}, upids(unknown)


@check
def list_errors_drops_only_ok(sim, prox):
    assert set(upids(node_list(prox, errors=1))) == {sim.tasks["failed"], sim.tasks["quick"]}


@check
def list_typefilter_userfilter_vmid(sim, prox):
    assert set(upids(node_list(prox, typefilter="vzdump"))) == {sim.tasks["logged"], sim.tasks["failed"]}
    assert len(node_list(prox, source="all", userfilter="ROOT@")) == 5
    assert node_list(prox, source="all", userfilter="nobody") == []
    assert upids(node_list(prox, source="all", vmid=101)) == [sim.tasks["long"]]


@check
def list_token_tasks_split_user_and_tokenid(sim, prox):
    entry = next(e for e in node_list(prox, source="active") if e["upid"] == sim.tasks["token"])
    assert (entry["user"], entry["tokenid"]) == ("root@pam", "ci"), entry


@check
def list_of_another_node(sim, prox):
    assert sim.tasks["elsewhere"] in upids(prox.nodes("pve2").tasks.get())


@check
def ticket_auth_stops_a_task_with_the_csrf_token(sim, prox):
    ticket = ProxmoxAPI(sim.host, port=sim.port, user="root@pam", password="ci-password", verify_ssl=False)
    long_running = sim.tasks["long"]
    assert ticket.nodes("pve1").tasks(long_running).status.get()["status"] == "running"
    assert ticket.nodes("pve1").tasks(long_running).delete() is None
    status = ticket.nodes("pve1").tasks(long_running).status.get()
    assert status["status"] == "stopped" and status["exitstatus"] == "received interrupt", status
    last = Tasks.decode_log(ticket.nodes("pve1").tasks(long_running).log.get(limit=0)).splitlines()[-1]
    assert last == "TASK ERROR: received interrupt", last


@check
def a_wrong_password_is_refused(sim, prox):
    try:
        ProxmoxAPI(sim.host, port=sim.port, user="root@pam", password="wrong", verify_ssl=False)
    except AuthenticationError:
        return
    raise AssertionError("a wrong password was accepted")


@check
def malformed_and_unknown_upids_are_400s(sim, prox):
    for upid, why in (("UPID:nonsense", "unable to parse worker upid"),
                      ("UPID:pve1:00000001:00000001:00000001:vzdump:1:root@pam:", "no such task")):
        try:
            prox.nodes("pve1").tasks(upid).status.get()
            raise AssertionError(f"{upid} was accepted")
        except ResourceException as e:
            assert e.status_code == 400, e
            assert "Parameter verification failed" in str(e), e
            assert e.errors == {"upid": why}, e.errors


@check
def bad_filters_are_400s_naming_the_parameter(sim, prox):
    try:
        node_list(prox, limit=-1)
        raise AssertionError("limit=-1 was accepted")
    except ResourceException as e:
        assert e.status_code == 400 and "limit" in e.errors, (e, e.errors)


def main(binary):
    sim = Sim(binary)
    passed, failed = 0, 0
    try:
        setup(sim)
        prox = api_token(sim)
        for fn in CHECKS:
            try:
                fn(sim, prox)
                passed += 1
            except Exception:  # a failed check is counted, never fatal
                failed += 1
                print(f"FAILED {fn.__name__}:\n{traceback.format_exc()}", file=sys.stderr)
    finally:
        sim.stop()
    print(f"proxmoxer: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

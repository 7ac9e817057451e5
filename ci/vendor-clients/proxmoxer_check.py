"""proxmoxer, unchanged from PyPI, against tasktrack's Proxmox VE simulator.

Usage: python3 proxmoxer_check.py path/to/tasktrack-sim
Checks Tasks.blocking_status (token and ticket auth), Tasks.decode_log,
Tasks.decode_upid, proxmoxer's timeout (None), and PVE-style errors.
"""
import subprocess
import sys

import urllib3
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException
from proxmoxer.tools import Tasks

urllib3.disable_warnings()


def main(binary):
    sim = subprocess.Popen(
        [binary, "--vendor", "proxmox", "--tls", "--port", "0", "--sample-tasks",
         "--token-id", "root@pam!ci", "--token-secret", "ci-secret", "--password", "ci-password"],
        stdout=subprocess.PIPE, text=True)
    try:
        url = sim.stdout.readline().split()[-1]
        tasks = []
        for line in sim.stdout:
            if not line.startswith("task "):
                break
            tasks.append(line.split()[1])
        host, port = url.split("//")[1].rsplit(":", 1)
        checks = run(host, int(port), tasks)
    finally:
        sim.terminate()
        sim.wait()
    print(f"proxmoxer: {checks} passed, 0 failed")


def run(host, port, tasks):
    checks = 0
    token = ProxmoxAPI(host, port=port, user="root@pam", token_name="ci", token_value="ci-secret",
                       verify_ssl=False)
    upid = next(t for t in tasks if ":vzcreate:" in t)
    node = Tasks.decode_upid(upid)["node"]
    assert Tasks.decode_upid(upid)["type"] == "vzcreate", Tasks.decode_upid(upid)
    checks += 1

    status = Tasks.blocking_status(token, upid, timeout=60, polling_interval=0.25)
    assert status is not None, "blocking_status timed out"
    assert status["status"] == "stopped", status
    assert status["exitstatus"] == "WARNINGS: 1", status
    assert status["upid"] == upid and status["node"] == node, status
    checks += 1

    log = token.nodes(node).tasks(upid).log.get(start=0, limit=50)
    text = Tasks.decode_log(log)
    assert text.splitlines()[-1] == "TASK WARNINGS: 1", text
    checks += 1

    ticket = ProxmoxAPI(host, port=port, user="root@pam", password="ci-password", verify_ssl=False)
    again = ticket.nodes(node).tasks(upid).status.get()
    assert again["exitstatus"] == "WARNINGS: 1", again
    checks += 1

    long_running = next(t for t in tasks if ":qmigrate:" in t)
    assert Tasks.blocking_status(ticket, long_running, timeout=1, polling_interval=0.2) is None
    checks += 1

    try:
        token.nodes(node).tasks("UPID:nonsense").status.get()
        raise AssertionError("a malformed UPID was accepted")
    except ResourceException as e:
        assert e.status_code == 400, e
        assert "Parameter verification failed" in str(e), e
        assert "unable to parse worker upid" in str(e), e
    checks += 1

    listed = token.nodes(node).tasks.get(source="all")
    assert any(t["upid"] == upid for t in listed), listed
    checks += 1
    return checks


if __name__ == "__main__":
    main(sys.argv[1])

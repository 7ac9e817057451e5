"""Huawei Cloud's Python SDK, unchanged from PyPI, against tasktrack's KPS
and DCS simulators, signing every request with AK/SK.

Usage: python3 huaweicloud_check.py path/to/tasktrack-sim

Calls every task operation the SDK has: KPS ListFailedTask, ListRunningTask,
ListKeypairTask, DeleteFailedTask, DeleteAllFailedTask; DCS
ShowBackgroundTaskProgress, ListBackgroundTask, DeleteBackgroundTask,
ListCenterTask, DeleteCenterTask; plus the error answers the SDK parses.
Prints `huaweicloud sdk: N passed, M failed`; exits 1 when a check failed.
"""
import json
import subprocess
import sys
import traceback
import urllib.request

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkdcs.v2 import (DcsClient, DeleteBackgroundTaskRequest, DeleteCenterTaskRequest,
                                  ListBackgroundTaskRequest, ListCenterTaskRequest, ShowBackgroundTaskProgressRequest)
from huaweicloudsdkkps.v3 import (DeleteAllFailedTaskRequest, DeleteFailedTaskRequest, KpsClient,
                                  ListFailedTaskRequest, ListKeypairTaskRequest, ListRunningTaskRequest)

PROJECT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
AK, SK = "CIACCESSKEY0001", "ci-secret-key-0001"
INSTANCE = "5560df16-cebf-4473-95c4-d1b573c16e79"


class Sim:
    def __init__(self, binary, vendor):
        self.proc = subprocess.Popen(
            [binary, "--vendor", vendor, "--port", "0", "--sample-tasks", "--project-id", PROJECT, "--ak", AK,
             "--sk", SK, "--instances", INSTANCE, "--manual-clock"],
            stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]
        self.tasks = []
        for line in self.proc.stdout:
            if not line.startswith("task "):
                break
            self.tasks.append(line.split()[1])

    def advance(self, ms):
        """Moves the simulator's manual clock: no waiting for tasks to end."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_sim/clock/advance?ms={ms}", method="POST"))

    def create(self, spec):
        """Scripts one more task through the simulator's control API."""
        req = urllib.request.Request(f"{self.url}/_sim/tasks", data=json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.load(r)["id"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def client(cls, url, sk=SK):
    return cls.new_builder().with_credentials(BasicCredentials(AK, sk, PROJECT)).with_endpoints([url]).build()


def expect_error(call, status, code):
    try:
        call()
    except exceptions.ClientRequestException as e:
        assert (e.status_code, e.error_code) == (status, code), (e.status_code, e.error_code, e.error_msg)
        assert e.request_id, "X-Request-Id is sent"
        return
    raise AssertionError(f"expected {status} {code}")


def kps_checks(sim):
    kps = client(KpsClient, sim.url)
    failed_id, running_id, unbind_id = sim.tasks[0], sim.tasks[1], sim.tasks[2]
    sim.advance(1500)  # the sample failure ends after 1 s

    def list_failed():
        failed = kps.list_failed_task(ListFailedTaskRequest(limit=10, offset=0))
        assert failed.total == 1, failed
        t = failed.tasks[0]
        assert t.task_id == failed_id and t.operate_type == "FAILED_RESET", failed
        assert t.task_error_code == "KPS.0105" and t.task_error_msg == "Update public key error", failed
        assert t.task_time.isdigit(), t.task_time

    def list_failed_pages():
        empty = kps.list_failed_task(ListFailedTaskRequest(limit=10, offset=1))
        assert empty.total == 1 and empty.tasks == [], empty

    def list_running():
        running = kps.list_running_task(ListRunningTaskRequest())
        ops = {t.task_id: t.operate_type for t in running.tasks}
        assert ops.get(running_id) == "RUNNING_REPLACE" and ops.get(unbind_id) == "RUNNING_UNBIND", running
        assert running.total == 2, running

    def keypair_task():
        one = kps.list_keypair_task(ListKeypairTaskRequest(task_id=running_id))
        assert one.task_status == "RUNNING_REPLACE" and one.task_id == running_id and one.server_id, one

    def delete_failed():
        kps.delete_failed_task(DeleteFailedTaskRequest(task_id=failed_id))
        assert kps.list_failed_task(ListFailedTaskRequest()).total == 0

    def delete_all_failed():
        for _ in range(2):
            sim.create({"kind": "reset", "duration_ms": 100,
                        "outcome": {"outcome": "failure", "code": "KPS.0109", "message": "The server is not running"}})
        sim.advance(200)
        assert kps.list_failed_task(ListFailedTaskRequest()).total == 2
        kps.delete_all_failed_task(DeleteAllFailedTaskRequest())
        assert kps.list_failed_task(ListFailedTaskRequest()).total == 0

    def wrong_secret_key():
        expect_error(lambda: client(KpsClient, sim.url, sk="not-the-secret").list_failed_task(ListFailedTaskRequest()),
                     401, "APIGW.0301")

    return [list_failed, list_failed_pages, list_running, keypair_task, delete_failed, delete_all_failed,
            wrong_secret_key]


def dcs_checks(sim):
    dcs = client(DcsClient, sim.url)
    scale, replica = sim.tasks[0], sim.tasks[1]

    def progress():
        p = dcs.show_background_task_progress(ShowBackgroundTaskProgressRequest(instance_id=INSTANCE, task_id=scale))
        assert 0 <= p.progress < 100 and p.remain_time > 0, p
        assert [s.step_name for s in p.step_details] == ["precheck", "migrate data"], p
        assert p.step_details[0].sub_step_details[0].sub_step_name == "resource check", p

    def progress_of_a_failed_task():
        sim.advance(6000)
        p = dcs.show_background_task_progress(ShowBackgroundTaskProgressRequest(instance_id=INSTANCE, task_id=replica))
        statuses = [s.step_status for s in p.step_details]
        assert statuses == ["FINISH", "FAILED"], statuses
        assert p.step_details[1].error_code == "DCS.4933", p.step_details[1]

    def list_background():
        listed = dcs.list_background_task(ListBackgroundTaskRequest(instance_id=INSTANCE, offset=0, limit=10))
        assert listed.task_count == "2" and {t.id for t in listed.tasks} == {scale, replica}, listed
        assert all(t.enable_show is True for t in listed.tasks), listed
        assert {t.status for t in listed.tasks} == {"EXECUTING", "FAILED"}, listed

    def list_background_window():
        later = dcs.list_background_task(ListBackgroundTaskRequest(instance_id=INSTANCE, start_time="29991231235959"))
        assert later.task_count == "0" and later.tasks == [], later

    def list_center():
        centre = dcs.list_center_task(ListCenterTaskRequest(offset=0, limit=10))
        assert int(centre.task_count) == 2 and any(t.error_code == "DCS.4933" for t in centre.tasks), centre

    def unknown_task():
        expect_error(lambda: dcs.show_background_task_progress(
            ShowBackgroundTaskProgressRequest(instance_id=INSTANCE, task_id="nope")), 400, "DCS.4133")

    def delete_background():
        answer = dcs.delete_background_task(DeleteBackgroundTaskRequest(instance_id=INSTANCE, task_id=replica))
        assert answer.message, answer
        left = dcs.list_background_task(ListBackgroundTaskRequest(instance_id=INSTANCE))
        assert [t.id for t in left.tasks] == [scale], left

    def delete_center():
        dcs.delete_center_task(DeleteCenterTaskRequest(task_id=scale))
        assert dcs.list_center_task(ListCenterTaskRequest()).task_count == "0"

    return [progress, progress_of_a_failed_task, list_background, list_background_window, list_center, unknown_task,
            delete_background, delete_center]


def run(binary, vendor, checks_of):
    sim = Sim(binary, vendor)
    passed, failed = 0, 0
    try:
        for check in checks_of(sim):
            try:
                check()
                passed += 1
            except Exception:  # a failed check is counted, never fatal
                failed += 1
                print(f"FAILED {vendor} {check.__name__}:\n{traceback.format_exc()}", file=sys.stderr)
    finally:
        sim.stop()
    return passed, failed


if __name__ == "__main__":
    kps = run(sys.argv[1], "kps", kps_checks)
    dcs = run(sys.argv[1], "dcs", dcs_checks)
    passed, failed = kps[0] + dcs[0], kps[1] + dcs[1]
    print(f"huaweicloud sdk: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

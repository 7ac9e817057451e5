"""Huawei Cloud's Python SDK, unchanged from PyPI, against tasktrack's KPS
and DCS simulators, signing every request with AK/SK.

Usage: python3 huaweicloud_check.py path/to/tasktrack-sim
"""
import subprocess
import sys
import urllib.request

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkdcs.v2 import DcsClient, ListBackgroundTaskRequest, ShowBackgroundTaskProgressRequest
from huaweicloudsdkkps.v3 import (DeleteFailedTaskRequest, KpsClient, ListFailedTaskRequest, ListKeypairTaskRequest,
                                  ListRunningTaskRequest)

PROJECT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
AK, SK = "CIACCESSKEY0001", "ci-secret-key-0001"
INSTANCE = "5560df16-cebf-4473-95c4-d1b573c16e79"


def start(binary, vendor):
    proc = subprocess.Popen([binary, "--vendor", vendor, "--port", "0", "--sample-tasks", "--project-id", PROJECT,
                             "--ak", AK, "--sk", SK, "--instances", INSTANCE, "--manual-clock"],
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().split()[-1]
    tasks = []
    for line in proc.stdout:
        if not line.startswith("task "):
            break
        tasks.append(line.split()[1])
    return proc, url, tasks


def advance(url, ms):
    """Moves the simulator's manual clock: no waiting for tasks to end."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/_sim/clock/advance?ms={ms}", method="POST"))


def client(cls, url, sk=SK):
    return cls.new_builder().with_credentials(BasicCredentials(AK, sk, PROJECT)).with_endpoints([url]).build()


def check_kps(binary):
    proc, url, tasks = start(binary, "kps")
    checks = 0
    try:
        kps = client(KpsClient, url)
        failed_id, running_id = tasks[0], tasks[1]
        advance(url, 1500)  # the sample failure ends after 1 s
        failed = kps.list_failed_task(ListFailedTaskRequest(limit=10, offset=0))
        assert failed.total == 1, failed
        assert failed.tasks[0].task_id == failed_id and failed.tasks[0].operate_type == "FAILED_RESET", failed
        assert failed.tasks[0].task_error_msg == "Update public key error", failed
        checks += 1
        running = kps.list_running_task(ListRunningTaskRequest())
        assert any(t.task_id == running_id and t.operate_type == "RUNNING_REPLACE" for t in running.tasks), running
        checks += 1
        one = kps.list_keypair_task(ListKeypairTaskRequest(task_id=running_id))
        assert one.task_status == "RUNNING_REPLACE", one
        checks += 1
        kps.delete_failed_task(DeleteFailedTaskRequest(task_id=failed_id))
        assert kps.list_failed_task(ListFailedTaskRequest()).total == 0
        checks += 1
        try:
            client(KpsClient, url, sk="not-the-secret").list_failed_task(ListFailedTaskRequest())
            raise AssertionError("a wrong secret key was accepted")
        except exceptions.ClientRequestException as e:
            assert e.status_code == 401 and e.error_code == "APIGW.0301", (e.status_code, e.error_code)
            assert e.request_id, "X-Request-Id is sent"
        checks += 1
    finally:
        proc.terminate()
        proc.wait()
    return checks


def check_dcs(binary):
    proc, url, tasks = start(binary, "dcs")
    checks = 0
    try:
        dcs = client(DcsClient, url)
        progress = dcs.show_background_task_progress(ShowBackgroundTaskProgressRequest(instance_id=INSTANCE,
                                                                                     task_id=tasks[0]))
        assert 0 <= progress.progress < 100 and progress.remain_time > 0, progress
        assert [s.step_name for s in progress.step_details] == ["precheck", "migrate data"], progress
        assert progress.step_details[0].sub_step_details[0].sub_step_name == "resource check", progress
        checks += 1
        listed = dcs.list_background_task(ListBackgroundTaskRequest(instance_id=INSTANCE, offset=0, limit=10))
        assert int(listed.task_count) == 2 and {t.id for t in listed.tasks} == set(tasks), listed
        checks += 1
        try:
            dcs.show_background_task_progress(ShowBackgroundTaskProgressRequest(instance_id=INSTANCE, task_id="nope"))
            raise AssertionError("an unknown task was found")
        except exceptions.ClientRequestException as e:
            assert e.status_code == 404 and e.error_code == "DCS.4133", (e.status_code, e.error_code)
        checks += 1
    finally:
        proc.terminate()
        proc.wait()
    return checks


if __name__ == "__main__":
    kps = check_kps(sys.argv[1])
    dcs = check_dcs(sys.argv[1])
    print(f"huaweicloud sdk: {kps + dcs} passed, 0 failed")

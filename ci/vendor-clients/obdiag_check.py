"""OceanBase's own OCP task client logic against tasktrack's OCP simulator.

Usage: python3 obdiag_check.py path/to/tasktrack-sim

obdiag (oceanbase/obdiag) is not installable as a library, and its code is
not copied here: `ObdiagTask` below makes the same calls, in the same order,
with plain `requests` and HTTP Basic auth, as `src/common/ocp/ocp_task.py`'s
`Task` (`get`: GET /api/v2/tasks/instances/{id} and every key of `data`
becomes an attribute; `retry`: POST …/{id}/retry; `wait_done`: poll, retry a
failed task up to TASK_RETRY_PERMIT[name] times, raise past that). Its sleep
moves the simulator's manual clock instead of waiting. Also checks the
answers ocp-express's code gives (no-data rollback, integer error codes,
/api/v1). Prints `obdiag: N passed, M failed`; exits 1 when a check failed.
"""
import subprocess
import sys
import traceback

import requests

USER, PASSWORD = "admin", "ci-ocp-password"
TASK = "/api/v2/tasks/instances"  # obdiag src/common/ocp/ocp_api.py `task`


class Sim:
    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--vendor", "ocp", "--port", "0", "--ocp-user", USER, "--ocp-password", PASSWORD,
             "--manual-clock"],
            stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]

    def create(self, kind, seconds, fails=None, fail_runs=None):
        spec = {"kind": kind, "duration_ms": seconds * 1000}
        if fails:
            spec["outcome"] = {"outcome": "failure", "message": fails}
        if fail_runs is not None:
            spec["attrs"] = {"fail_runs": str(fail_runs)}
        r = requests.post(f"{self.url}/_sim/tasks", json=spec, timeout=10)
        r.raise_for_status()
        return int(r.json()["id"])

    def advance(self, seconds):
        requests.post(f"{self.url}/_sim/clock/advance?ms={int(seconds * 1000)}", timeout=10).raise_for_status()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class ObdiagTask:
    """The calls of obdiag's `src/common/ocp/ocp_task.py` `Task`."""

    STATUS_TASK_RUNNING = "RUNNING"
    STATUS_TASK_PENDING = "PENDING"
    STATUS_TASK_SUCCESS = "SUCCESSFUL"
    STATUS_TASK_FAILED = "FAILED"
    TASK_RETRY_PERMIT = {"Task retry": 3}

    def __init__(self, url, auth, task_id, sleep):
        self.url, self.auth, self.id, self.sleep = url, auth, task_id, sleep
        self.cluster, self.createTime, self.creator, self.executor = {}, "", {}, ""
        self.name, self.operation, self.prohibitRollback, self.startTime = "", "", "", ""
        self.status, self.subtasks, self.taskDefinitionId, self.type = "", [], -1, ""
        self.get()
        self._retry_permit_time = ObdiagTask.TASK_RETRY_PERMIT.get(self.name, 0)
        self._retry_times = 0

    def _seri_get(self, data):
        for k, v in data.items():
            setattr(self, k, v)

    def retry(self):
        requests.post(self.url + TASK + "/%s/retry" % self.id, auth=self.auth)

    def get(self):
        response = requests.get(self.url + TASK + "/%s" % self.id, auth=self.auth)
        self._seri_get(response.json()["data"])

    def wait_done(self, interval=20):
        while True:
            self.get()
            if self.status == ObdiagTask.STATUS_TASK_SUCCESS:
                break
            elif self.status == ObdiagTask.STATUS_TASK_FAILED:
                if self._retry_times >= self._retry_permit_time:
                    raise Exception("task failed! name:%s id:%s" % (self.name, self.id))
                self.retry()
                self._retry_times += 1
                self.sleep(interval)
                continue
            else:
                self.sleep(interval)
        return self.status


def checks(sim):
    auth = (USER, PASSWORD)

    def task(task_id):
        return ObdiagTask(sim.url, auth, task_id, sim.advance)

    def get_sets_every_field():
        t = task(sim.create("Add tenant", 5))
        for field in ("id", "name", "status", "subtasks", "createTime", "creator", "executor", "operation",
                      "prohibitRollback", "startTime", "taskDefinitionId", "type"):
            assert hasattr(t, field) and getattr(t, field) not in ("", None), field
        assert t.status == "RUNNING" and t.operation == "EXECUTE" and t.type == "MANUAL", vars(t)
        assert not hasattr(t, "finishTime"), "a null finishTime is left out"

    def wait_done_succeeds():
        t = task(sim.create("Backup tenant", 30))
        assert t.wait_done(interval=20) == "SUCCESSFUL"

    def wait_done_retries_a_permitted_task():
        t = task(sim.create("Task retry", 10, fails="observer exited", fail_runs=2))
        assert t.wait_done(interval=20) == "SUCCESSFUL"
        assert t._retry_times == 2, t._retry_times
        sub = t.subtasks[0]
        assert sub["runTime"] == 3 and sub["operation"] == "RETRY", sub

    def wait_done_raises_past_the_permit():
        t = task(sim.create("Delete cluster", 10, fails="disk full"))
        try:
            t.wait_done(interval=20)
        except Exception as e:
            assert "task failed! name:Delete cluster" in str(e), e
            return
        raise AssertionError("a failed task did not raise")

    def subtasks_are_ordered_by_series_id_not_response():
        t = task(sim.create("Upgrade", 4))
        series = [s["seriesId"] for s in t.subtasks]
        assert all("parallelIdx" in s and "downstreams" in s for s in t.subtasks), t.subtasks
        assert sorted(series) == list(range(1, len(series) + 1)), series

    def rollback_answers_no_data():
        task_id = sim.create("Add zone", 2, fails="zone exists")
        sim.advance(3)
        r = requests.post(sim.url + TASK + f"/{task_id}/rollback", auth=auth)
        body = r.json()
        assert r.status_code == 200 and body["successful"] is True and "data" not in body, body
        sim.advance(5)
        t = task(task_id)
        assert (t.status, t.operation) == ("SUCCESSFUL", "ROLLBACK"), (t.status, t.operation)
        assert all(s["status"] == "PENDING" for s in t.subtasks), t.subtasks

    def refusals_have_integer_codes():
        task_id = sim.create("Busy", 100)
        r = requests.post(sim.url + TASK + f"/{task_id}/retry", auth=auth)
        error = r.json()["error"]
        assert r.status_code == 400 and error["code"] == 20003, r.text
        r = requests.get(sim.url + TASK + "/999999", auth=auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == 20000, r.text

    def wrong_password_is_401():
        r = requests.get(sim.url + TASK, auth=(USER, "wrong"))
        assert r.status_code == 401 and r.json()["error"]["message"] == "Bad credentials", r.text

    def ocp_express_paths():
        task_id = sim.create("Express", 1)
        r = requests.get(sim.url + f"/api/v1/tasks/instances/{task_id}", auth=auth)
        assert r.status_code == 200 and r.json()["data"]["id"] == task_id, r.text
        page = requests.get(sim.url + "/api/v1/tasks/instances", params={"keyword": "expr", "page": 1, "size": 5},
                            auth=auth).json()["data"]
        assert [t["id"] for t in page["contents"]] == [task_id] and page["page"]["number"] == 1, page

    return [get_sets_every_field, wait_done_succeeds, wait_done_retries_a_permitted_task,
            wait_done_raises_past_the_permit, subtasks_are_ordered_by_series_id_not_response,
            rollback_answers_no_data, refusals_have_integer_codes, wrong_password_is_401, ocp_express_paths]


def main(binary):
    sim = Sim(binary)
    passed, failed = 0, 0
    try:
        for check in checks(sim):
            try:
                check()
                passed += 1
            except Exception:  # a failed check is counted, never fatal
                failed += 1
                print(f"FAILED {check.__name__}:\n{traceback.format_exc()}", file=sys.stderr)
    finally:
        sim.stop()
    print(f"obdiag: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""The peer a Python user has today: proxmoxer's Tasks.blocking_status,
unchanged from PyPI, one thread per task, against the bench's Proxmox
simulator.

Usage (run by tasktrack-bench, not by hand):
    python3 proxmoxer_peer.py PLAN.json POLLING_INTERVAL_SECONDS

Reads the bench's plan (the simulator's URL, each task's UPID and when the
simulator finishes it), waits for every task with blocking_status in its
own thread, and prints the bench's report as one JSON line: detection
latencies, this process's CPU time (all threads), status requests, and
resident memory at the start and at the peak. Exits 3 when proxmoxer is not
installed (`python3 -m pip install proxmoxer requests`).
"""
import itertools
import json
import logging
import resource
import sys
import threading
import time

try:
    from proxmoxer import ProxmoxAPI
    from proxmoxer.tools import Tasks
except ImportError:
    print("proxmoxer is not installed: python3 -m pip install proxmoxer requests", file=sys.stderr)
    sys.exit(3)


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    interval = float(sys.argv[2])
    base = plan["urls"]["proxmox"].rstrip("/")
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    # A thousand threads share proxmoxer's one session; urllib3 warns on
    # every connection past its pool of ten, which is what users get, but
    # not worth printing a thousand times.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    prox = ProxmoxAPI(host, port=int(port), user="root@pam", token_name="bench",
                      token_value="bench", verify_ssl=False)
    # proxmoxer always says https; the bench's simulators speak plain HTTP
    # to every client alike, so only the scheme of its base URL changes.
    prox._store["base_url"] = base + "/api2/json"
    session = prox._store["session"]
    sent = itertools.count()
    request = session.request

    def counted(*args, **kwargs):
        next(sent)
        return request(*args, **kwargs)

    session.request = counted

    latencies = []
    lock = threading.Lock()

    def wait(task):
        status = Tasks.blocking_status(prox, task["id"], timeout=3600, polling_interval=interval)
        if status is not None:
            late = int(time.time() * 1000) - task["finish_ms"]
            with lock:
                latencies.append(late)

    rss_start = rss_now()
    cpu_start = cpu_now()
    threads = [threading.Thread(target=wait, args=(t,), daemon=True) for t in plan["tasks"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = cpu_now() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "detected": len(latencies),
        "latencies_ms": latencies,
        "cpu_s": cpu,
        # blocking_status sends one status GET per loop and nothing else.
        "updates": next(sent),
        "rss_start": rss_start,
        "rss_peak": peak,
        "lag_p99_ms": None,
        "stretch_percent": None,
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Lifecycle precision (issue 7): how long after a pod's DELETE its preStop exec hook starts,
and how late after its deadline SIGKILL ends an app that ignores SIGTERM.

Starts `podvisor up` (release build) on a fresh data dir with its own loopback ranges. In
batches, creates pods of the test app that ignore SIGTERM, with a preStop exec hook (the test
app's `hook`, which records when it starts and exits at once) and
terminationGracePeriodSeconds 2; waits until they run; then, for each pod: notes the wall clock
`t0`, sends DELETE on an API connection opened beforehand, and watches the app's process with
a pidfd. From the records: hook start - t0 (the trigger is the deletion request); and death -
(the app's SIGTERM record + 2 s) (SIGKILL's deadline: the hook takes no whole second, so the
stop signal gets the 2 s floor of the grace). Prints distributions and the DESIGN targets
(hooks within 10 ms of their trigger, SIGKILL within 50 ms of the deadline).

Usage: precision.py PODVISOR TESTAPP [--pods N (60)] [--batch B (10)] [--keep]
(--keep: keep the work dir, with the node's output and a `t0` file: each DELETE's pod and
wall clock in unix ns, to line up with the node's log, e.g. under PODVISOR_LOG=debug).
Needs Linux >= 5.3 (pidfd) and Python >= 3.9; loopback only (127.71.0.0/24 pods,
127.72.0.0/24 Services, node 127.73.0.1). Every process it starts is stopped by pid.
"""

import base64
import http.client
import json
import os
import re
import select
import signal
import ssl
import subprocess
import sys
import tempfile
import time

GRACE_S = 2


def percentile(values, p):
    values = sorted(values)
    return values[round((len(values) - 1) * p)]


class Api:
    """One kept-alive HTTPS connection to the node's API with the kubeconfig's CA and token."""

    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()
        server = re.search(r"server: https://([\d.]+):(\d+)", text)
        ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", text).group(1))
        self.token = re.search(r"token: (\S+)", text).group(1)
        context = ssl.create_default_context(cadata=ca.decode())
        self.conn = http.client.HTTPSConnection(
            server.group(1), int(server.group(2)), context=context, timeout=30
        )

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        reply = self.conn.getresponse()
        payload = reply.read()
        if reply.status >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def read_records(path):
    """(name, event) -> list of (nanos, fields) from the test app's record file."""
    records = {}
    if not os.path.exists(path):
        return records
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
        records.setdefault((parts[1], parts[2]), []).append((int(parts[0]), fields))
    return records


def pod(name, testapp, record):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": GRACE_S,
            "containers": [
                {
                    "name": "app",
                    "image": "podvisor/testapp",
                    "command": [
                        testapp, "serve", "--name", name, "--port", "0",
                        "--record", record, "--on-signal", "TERM=ignore",
                    ],
                    "lifecycle": {
                        "preStop": {
                            "exec": {
                                "command": [
                                    testapp, "hook", "--name", f"{name}-hook",
                                    "--record", record, "preStop",
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


def until(what, timeout, check):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.02)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    podvisor, testapp = os.path.abspath(args[0]), os.path.abspath(args[1])
    pods, batch, keep = 60, 10, False
    rest = args[2:]
    while rest:
        flag, value = rest[0], rest[1] if len(rest) > 1 else ""
        if flag == "--keep":
            keep = True
            rest = rest[1:]
            continue
        if flag == "--pods" and value.isdigit() and 1 <= int(value) <= 500:
            pods = int(value)
        elif flag == "--batch" and value.isdigit() and 1 <= int(value) <= 50:
            batch = int(value)
        else:
            sys.exit(f"precision.py: {flag} {value}: --pods 1..500, --batch 1..50, --keep")
        rest = rest[2:]

    work = tempfile.mkdtemp(prefix="podvisor-precision.")
    record = os.path.join(work, "record")
    data = os.path.join(work, "data")
    log = open(os.path.join(work, "node.log"), "w")
    node = subprocess.Popen(
        [podvisor, "up", "--data-dir", data, "--api-port", "0", "--color", "never",
         "--pod-cidr", "127.71.0.0/24", "--service-cidr", "127.72.0.0/24",
         "--node-address", "127.73.0.1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        until("the node's API", 30, lambda: os.path.exists(os.path.join(data, "kubeconfig"))
              and "API at" in open(os.path.join(work, "node.log")).read())
        api = Api(os.path.join(data, "kubeconfig"))
        hook_ms, kill_ms = [], []
        n = 0
        while n < pods:
            names = [f"p-{i:03d}" for i in range(n, min(n + batch, pods))]
            n += len(names)
            for name in names:
                api.call("POST", "/api/v1/namespaces/default/pods", pod(name, testapp, record))

            def started():
                r = read_records(record)
                pids = {name: r.get((name, "started"), [(0, {})])[-1][1].get("pid") for name in names}
                return pids if all(pids.values()) else None

            pids = until("the apps started", 30, started)
            fds = {name: os.pidfd_open(int(pid)) for name, pid in pids.items()}
            t0 = {}
            poller = select.poll()
            by_fd = {}
            for name in names:
                poller.register(fds[name], select.POLLIN)
                by_fd[fds[name]] = name
                t0[name] = time.time_ns()
                api.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
                if keep:
                    with open(os.path.join(work, "t0"), "a") as f:
                        f.write(f"{name} {t0[name]}\n")
            died = {}
            deadline = time.monotonic() + GRACE_S + 10
            while len(died) < len(names) and time.monotonic() < deadline:
                for fd, _ in poller.poll(1000):
                    died[by_fd[fd]] = time.time_ns()
                    poller.unregister(fd)
            for fd in fds.values():
                os.close(fd)
            if len(died) < len(names):
                raise RuntimeError(f"apps still alive after grace + 10 s: {set(names) - set(died)}")
            r = read_records(record)
            for name in names:
                hook = [(t, f) for t, f in r.get((f"{name}-hook", "hook"), [])
                        if f.get("phase") == "start"]
                term = [t for t, f in r.get((name, "signal"), []) if f.get("sig") == "SIGTERM"]
                if not hook or not term:
                    raise RuntimeError(f"{name}: no hook or SIGTERM record")
                hook_ms.append((hook[0][0] - t0[name]) / 1e6)
                kill_ms.append((died[name] - (term[0] + GRACE_S * 1_000_000_000)) / 1e6)
            print(f"{n} of {pods} pods", file=sys.stderr)

        def row(title, values):
            q = [percentile(values, p) for p in (0.5, 0.9, 0.99)]
            return (f"| {title} | {len(values)} | {min(values):.2f} | {q[0]:.2f} | {q[1]:.2f} | "
                    f"{q[2]:.2f} | {max(values):.2f} |")

        print("## Lifecycle precision\n")
        print(f"{pods} pods in batches of {batch} (deleted one after the other within a batch); "
              f"grace {GRACE_S} s; the app ignores SIGTERM; preStop exec hook.\n")
        print("| measure (ms) | n | min | p50 | p90 | p99 | max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(row("DELETE sent → preStop hook started", hook_ms))
        print(row("SIGKILL death − deadline (SIGTERM + 2 s)", kill_ms))
        h99, k99 = percentile(hook_ms, 0.99), percentile(kill_ms, 0.99)
        print(f"\nTargets (DESIGN): hooks start within 10 ms of their trigger: p99 {h99:.2f} ms -> "
              f"{'met' if h99 <= 10 else 'NOT met'}; SIGKILL within 50 ms of the deadline: p99 "
              f"{k99:.2f} ms, max {max(kill_ms):.2f} ms -> {'met' if max(kill_ms) <= 50 else 'NOT met'}.")
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()

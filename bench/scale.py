#!/usr/bin/env python3
"""Scale (issue 7): 1,000 pods of a sleeping process on one node, without and with an exec
readiness probe every 10 s: time from `podvisor up -f` until every pod is Running, then the
node's CPU share (its own process: utime + stime from /proc, pods and probe processes
excluded) and RSS at steady state; and, apart, the CPU of the probe processes the node
reaped in the window (cutime + cstime: from `clone` to exit, the spawn's share in the child
included).

Usage: scale.py PODVISOR [--pods N (1000)] [--steady S (30)]
Loopback only (pods 127.81.0.0/22, Services 127.82.0.0/24, node 127.83.0.1). Every process it
starts is stopped by pid (the node, which stops its pods).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from precision import Api  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """The process's own CPU time and that of its reaped children (seconds)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICKS
    children = (int(fields[13]) + int(fields[14])) / TICKS
    return own, children


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def until(what, timeout, check):
    """Polls every 250 ms (a list of 1,000 pods is 2 MiB: polling faster would load the node)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.25)


def manifest(pods, probe):
    probe_yaml = (
        "    readinessProbe:\n      exec: {command: [\"true\"]}\n      periodSeconds: 10\n"
        if probe
        else ""
    )
    docs = []
    for i in range(pods):
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: s-{i:04d}}}\nspec:\n"
            f"  terminationGracePeriodSeconds: 5\n  containers:\n  - name: app\n"
            f"    image: busybox\n    command: [\"sleep\", \"3600\"]\n{probe_yaml}"
        )
    return "---\n".join(docs)


def run(podvisor, pods, steady, probe):
    work = tempfile.mkdtemp(prefix="podvisor-scale.")
    path = os.path.join(work, "pods.yaml")
    with open(path, "w") as f:
        f.write(manifest(pods, probe))
    data = os.path.join(work, "data")
    log = open(os.path.join(work, "node.log"), "w")
    started = time.monotonic()
    node = subprocess.Popen(
        [podvisor, "up", "-f", path, "--data-dir", data, "--api-port", "0", "--color", "never",
         "--pod-cidr", "127.81.0.0/22", "--service-cidr", "127.82.0.0/24",
         "--node-address", "127.83.0.1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        until("the node's API", 60, lambda: os.path.exists(os.path.join(data, "kubeconfig"))
              and "API at" in open(os.path.join(work, "node.log")).read())
        api = Api(os.path.join(data, "kubeconfig"))

        def running():
            items = api.call("GET", "/api/v1/namespaces/default/pods")["items"]
            n = sum(1 for p in items if p.get("status", {}).get("phase") == "Running")
            return n == pods

        until("every pod Running", 120, running)
        all_running = time.monotonic() - started
        def ready_count():
            items = api.call("GET", "/api/v1/namespaces/default/pods")["items"]
            return sum(
                1 for p in items
                if any(c["type"] == "Ready" and c["status"] == "True"
                       for c in p.get("status", {}).get("conditions", []))
            )

        def probe_failures():
            events = api.call(
                "GET", "/api/v1/namespaces/default/events?fieldSelector=reason%3DUnhealthy"
            )["items"]
            return sum(e.get("count", 1) for e in events)

        time.sleep(15)  # start-up work (log pumps, first probes) settles; every probe ran once
        failures0 = probe_failures()
        (cpu0, reaped0), t0 = cpu_seconds(node.pid), time.monotonic()
        time.sleep(steady)
        (cpu1, reaped1), t1 = cpu_seconds(node.pid), time.monotonic()
        return {
            "all_running": all_running,
            "cpu_percent": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            "reaped_percent": 100.0 * (reaped1 - reaped0) / (t1 - t0),
            "rss": rss_mib(node.pid),
            "ready": ready_count(),
            "probe_failures": probe_failures() - failures0,
        }
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=120)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()
        subprocess.run(["rm", "-rf", work], check=False)


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    podvisor = os.path.abspath(args[0])
    pods, steady = 1000, 30
    rest = args[1:]
    while rest:
        flag, value = rest[0], rest[1] if len(rest) > 1 else ""
        if flag == "--pods" and value.isdigit() and 1 <= int(value) <= 1000:
            pods = int(value)
        elif flag == "--steady" and value.isdigit() and 5 <= int(value) <= 300:
            steady = int(value)
        else:
            sys.exit(f"scale.py: {flag} {value}: --pods 1..1000, --steady 5..300")
        rest = rest[2:]
    results = {}
    for probe in (False, True):
        label = "exec readiness probe every 10 s" if probe else "no probe"
        print(f"{label}: starting {pods} pods", file=sys.stderr)
        results[label] = run(podvisor, pods, steady, probe)
    print("## Scale\n")
    print(f"{pods} pods of `sleep 3600` from one `podvisor up -f`; CPU and RSS of the node "
          f"process over {steady} s at steady state (pods and probe processes excluded).\n")
    print("| pods | start → all Running (s) | node CPU (% of a core) | node RSS (MiB) | "
          "Ready at the end | probe failures during the window | probe processes' CPU "
          "(% of a core) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        print(f"| {label} | {r['all_running']:.1f} | {r['cpu_percent']:.1f} | {r['rss']:.0f} | "
              f"{r['ready']} | {r['probe_failures']} | {r['reaped_percent']:.1f} |")
    plain = results["no probe"]
    print(f"\nTargets (DESIGN): all started in <= 5 s: {plain['all_running']:.1f} s -> "
          f"{'met' if plain['all_running'] <= 5 else 'NOT met'}; steady CPU <= 3 % of a core: "
          + ", ".join(f"{label} {r['cpu_percent']:.1f} %" for label, r in results.items())
          + f" -> {'met' if all(r['cpu_percent'] <= 3 for r in results.values()) else 'NOT met'}"
          + "; RSS <= 100 MB: "
          + ", ".join(f"{label} {r['rss']:.0f} MiB" for label, r in results.items())
          + f" -> {'met' if all(r['rss'] * 1.048576 <= 100 for r in results.values()) else 'NOT met'}.")


if __name__ == "__main__":
    main()

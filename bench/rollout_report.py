#!/usr/bin/env python3
"""The report of bench/rollout.sh: per mode, every request oha made (its JSON summary counts
all of them, errors included; its sqlite database has each completed request with its start
time), the latency of the requests that started during the rollouts, the rollouts' durations,
then the two modes side by side.

Usage: rollout_report.py WORK_DIR RATE SECONDS CONNECTIONS MODE...
"""

import json
import sqlite3
import sys


def percentile(sorted_values, p):
    """Nearest rank, as the other benches."""
    if not sorted_values:
        return float("nan")
    i = round((len(sorted_values) - 1) * p)
    return sorted_values[i]


def load(work, mode):
    with open(f"{work}/{mode}.json") as f:
        summary = json.load(f)
    with open(f"{work}/{mode}.start") as f:
        oha_start_ms = int(f.read().strip())
    rollouts = []
    with open(f"{work}/{mode}.rollouts") as f:
        for line in f:
            start, end = line.split()
            rollouts.append((int(start), int(end)))
    statuses = {int(k): v for k, v in summary["statusCodeDistribution"].items()}
    errors = dict(summary["errorDistribution"])
    total = sum(statuses.values()) + sum(errors.values())
    non_2xx = {k: v for k, v in statuses.items() if not 200 <= k < 300}
    failed = sum(non_2xx.values()) + sum(errors.values())
    # Requests that started during the rollouts: from the first trigger to 1 s after the last
    # rollout completed (its old pods terminate after `rollout status` returned).
    first = (rollouts[0][0] - oha_start_ms) / 1000.0
    last = (rollouts[-1][1] + 1000 - oha_start_ms) / 1000.0
    db = sqlite3.connect(f"{work}/{mode}.db")
    durations = sorted(
        d * 1000.0
        for (d,) in db.execute(
            "SELECT duration FROM oha WHERE start >= ? AND start <= ?", (first, last)
        )
    )
    bad = db.execute(
        "SELECT start, status FROM oha WHERE status < 200 OR status >= 300 ORDER BY start LIMIT 10"
    ).fetchall()
    return {
        "total": total,
        "failed": failed,
        "non_2xx": non_2xx,
        "errors": errors,
        "rps": summary["summary"]["requestsPerSec"],
        "all_p50": summary["latencyPercentiles"]["p50"] * 1000.0,
        "all_p99": summary["latencyPercentiles"]["p99"] * 1000.0,
        "during": len(durations),
        "p50": percentile(durations, 0.50),
        "p99": percentile(durations, 0.99),
        "max": durations[-1] if durations else float("nan"),
        "rollouts": [(e - s) / 1000.0 for s, e in rollouts],
        "window": last - first,
        "bad": [(start * 1000.0 + oha_start_ms, status) for start, status in bad],
        "rollout_starts": [s for s, _ in rollouts],
    }


def main():
    work, rate, seconds, connections = sys.argv[1:5]
    modes = sys.argv[5:]
    results = {mode: load(work, mode) for mode in modes}
    print("## Rollout: zero dropped requests\n")
    print(
        f"Deployment of 3 replicas (RollingUpdate 25 %/25 %: one new pod at a time) behind an "
        f"HTTP Service; oha at {rate} req/s for {seconds} s over {connections} keep-alive "
        f"connections through the cluster IP; after a 5 s warm-up, rollouts one after the other "
        f"(`kubectl set env`, `kubectl rollout status`, 1 s pause) while at least 10 s of load "
        f"remain. The app drains and exits on SIGTERM; no preStop hook.\n"
    )
    titles = {
        "ordered": "ordered (default)",
        "unordered": "unordered (`--unordered-termination`)",
    }
    print("| | " + " | ".join(titles[m] for m in modes) + " |")
    print("|---|" + "---:|" * len(modes))

    def row(name, cell):
        print(f"| {name} | " + " | ".join(cell(results[m]) for m in modes) + " |")

    row("requests (all of the run)", lambda r: f"{r['total']:,}")
    row("failed requests", lambda r: f"**{r['failed']}**")
    row("success rate", lambda r: f"{100.0 * (r['total'] - r['failed']) / max(r['total'], 1):.4f} %")
    row("achieved rate (req/s)", lambda r: f"{r['rps']:.0f}")
    row("requests during the rollouts", lambda r: f"{r['during']:,}")
    row(
        "latency during the rollouts p50 / p99 / max (ms)",
        lambda r: f"{r['p50']:.2f} / {r['p99']:.2f} / {r['max']:.2f}",
    )
    row(
        "latency over the whole run p50 / p99 (ms)",
        lambda r: f"{r['all_p50']:.2f} / {r['all_p99']:.2f}",
    )
    row("rollouts (3 pods replaced each)", lambda r: f"{len(r['rollouts'])}")
    row(
        "rollout duration min / mean / max (s)",
        lambda r: f"{min(r['rollouts']):.2f} / {sum(r['rollouts']) / len(r['rollouts']):.2f} / "
        f"{max(r['rollouts']):.2f}",
    )
    row(
        "failures by kind",
        lambda r: "; ".join(
            [f"HTTP {k}: {v}" for k, v in sorted(r["non_2xx"].items())]
            + [f"{k}: {v}" for k, v in sorted(r["errors"].items())]
        )
        or "none",
    )
    print()
    for m in modes:
        r = results[m]
        if r["bad"]:
            print(f"{titles[m]}, first non-2xx answers (ms after the latest rollout trigger):")
            for at, status in r["bad"]:
                before = [s for s in r["rollout_starts"] if s <= at]
                since = f"{at - before[-1]:.0f}" if before else "before the first rollout"
                print(f"- HTTP {status}, {since}")
            print()
    if "ordered" in results and "unordered" in results:
        o, u = results["ordered"], results["unordered"]
        print(
            f"Side by side: failed requests ordered {o['failed']} vs unordered {u['failed']}; "
            f"p99 during the rollouts {o['p99']:.2f} ms vs {u['p99']:.2f} ms "
            f"(ratio {o['p99'] / u['p99']:.2f}); mean rollout {sum(o['rollouts']) / len(o['rollouts']):.1f} s "
            f"vs {sum(u['rollouts']) / len(u['rollouts']):.1f} s."
        )
    ordered = results.get("ordered")
    if ordered is not None:
        verdict = "met" if ordered["failed"] == 0 and ordered["total"] >= 60000 else "NOT met"
        print(
            f"\nTarget (issue 6): ordered run 0 failed over >= 60,000 requests: {verdict} "
            f"({ordered['failed']} failed of {ordered['total']:,})."
        )


if __name__ == "__main__":
    main()

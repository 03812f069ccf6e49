#!/bin/sh
# Gateway vs nginx vs HAProxy: one backend (an nginx answering "hello" from memory), reached
# directly, through podvisor's L7 gateway (a Service whose endpoint is the backend, joined
# with `podvisor register`), through nginx and through HAProxy configured as equivalent
# keep-alive reverse proxies; then the L4 TCP path (direct, podvisor, HAProxy `mode tcp`).
# Same load tool, same connections, one after the other in one run:
#   throughput: wrk, 1 thread, --connections, --seconds each;
#   latency:    oha at a fixed --rate for --seconds each, p50/p99 and the p99 added over direct.
# With --rounds N every target is measured N times, the targets taking turns, and the table
# shows each figure's median (a 2-core machine is noisy; turns spread the noise).
# Prints a table with ratios to podvisor.
#
# Usage: bench/gateway.sh [--seconds S (10)] [--connections C (32)] [--rate R (2000)]
#                         [--rounds N (1)]
# Installs nginx-light, haproxy and wrk with apt-get and oha with cargo (into bench/.tools)
# when missing. Loopback only: backend 127.61.0.1:8080, nginx 127.61.0.2:80, HAProxy
# 127.61.0.3:80 and :81 (tcp), podvisor Services from 127.62.0.0/24. About 2 minutes per round at 10 s.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=10
connections=32
rate=2000
rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench/gateway.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$seconds" "$connections" "$rate" "$rounds"; do
    case "$n" in '' | *[!0-9]*) echo "bench/gateway.sh: --seconds, --connections, --rate and --rounds take whole numbers" >&2; exit 2 ;; esac
done
if [ "$seconds" -lt 2 ] || [ "$seconds" -gt 60 ] || [ "$connections" -lt 1 ] || [ "$connections" -gt 512 ] ||
    [ "$rate" -lt 1 ] || [ "$rate" -gt 50000 ] || [ "$rounds" -lt 1 ] || [ "$rounds" -gt 9 ]; then
    echo "bench/gateway.sh: --seconds 2..60, --connections 1..512, --rate 1..50000, --rounds 1..9" >&2
    exit 2
fi
if [ $((seconds * 2 * 7 * rounds)) -gt 540 ]; then
    echo "bench/gateway.sh: --seconds x --rounds too long (2 x 7 targets x S x N must stay under 9 minutes)" >&2
    exit 2
fi

missing=""
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
command -v wrk >/dev/null || missing="$missing wrk"
if [ -n "$missing" ]; then
    echo "installing$missing (apt-get)" >&2
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y $missing >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y $missing >&2; }
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
oha=$(command -v oha || true)
if [ -z "$oha" ]; then
    oha="$root/bench/.tools/bin/oha"
    [ -x "$oha" ] || cargo install oha --locked --root "$root/bench/.tools" >&2
fi

cargo build --release --bin podvisor >&2
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
podvisor="$target/release/podvisor"

work=$(mktemp -d /tmp/podvisor-gateway.XXXXXX)
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The backend: nginx answering from memory, one worker.
mkdir -p "$work/backend" "$work/proxy"
cat >"$work/backend/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/backend;
    keepalive_requests 1000000;
    server {
        listen 127.61.0.1:8080 reuseport backlog=4096;
        location / { return 200 "hello\n"; }
    }
}
EOF
# nginx as a keep-alive reverse proxy, a worker per core.
cat >"$work/proxy/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/proxy/nginx.pid;
error_log $work/proxy/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/proxy;
    proxy_temp_path $work/proxy;
    keepalive_requests 1000000;
    upstream backend {
        server 127.61.0.1:8080;
        keepalive 256;
    }
    server {
        listen 127.61.0.2:80 backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
# HAProxy: HTTP keep-alive to the backend (connections reused), a thread per core; and TCP.
cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4000
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend http
    mode http
    bind 127.61.0.3:80
    default_backend backend
backend backend
    mode http
    http-reuse always
    server b1 127.61.0.1:8080
frontend tcp
    mode tcp
    bind 127.61.0.3:81
    default_backend tcp_backend
backend tcp_backend
    mode tcp
    server b1 127.61.0.1:8080
EOF
"$nginx" -c "$work/backend/nginx.conf" -e "$work/backend/error.log" 2>"$work/backend.err" &
pids="$pids $!"
"$nginx" -c "$work/proxy/nginx.conf" -e "$work/proxy/error.log" 2>"$work/proxy.err" &
pids="$pids $!"
"$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids="$pids $!"

# podvisor: a Service without selector (an HTTP port and a TCP port), the backend registered.
cat >"$work/svc.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: backend
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080, appProtocol: http}
  - {name: tcp, port: 81, targetPort: 8080}
EOF
data="$work/data"
"$podvisor" up -f "$work/svc.yaml" --data-dir "$data" --api-port 0 --color never \
    --pod-cidr 127.63.0.0/24 --service-cidr 127.62.0.0/24 --node-address 127.64.0.1 \
    >"$work/node.log" 2>&1 &
pids="$pids $!"
i=0
until [ -s "$data/kubeconfig" ] && grep -q "API at" "$work/node.log"; do
    i=$((i + 1))
    [ $i -gt 300 ] && { echo "the node did not start:" >&2; cat "$work/node.log" >&2; exit 1; }
    sleep 0.1
done
"$podvisor" register backend 127.61.0.1:8080 --port-name http --data-dir "$data" >"$work/register-http.log" 2>&1 &
pids="$pids $!"
"$podvisor" register backend 127.61.0.1:8080 --port-name tcp --data-dir "$data" >"$work/register-tcp.log" 2>&1 &
pids="$pids $!"
vip=$(kubectl --kubeconfig "$data/kubeconfig" get service backend -o 'jsonpath={.spec.clusterIP}')

wait_ok() { # URL: until it answers 200 (bounded)
    i=0
    until [ "$(python3 -c "import urllib.request; print(urllib.request.urlopen('$1', timeout=2).status)" 2>/dev/null)" = 200 ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "$1 does not answer; node and registrations:" >&2
            for f in node register-http register-tcp; do tail -n 20 "$work/$f.log" >&2; done
            exit 1
        fi
        sleep 0.1
    done
}
for url in http://127.61.0.1:8080/ http://127.61.0.2/ http://127.61.0.3/ "http://$vip/" \
    http://127.61.0.3:81/ "http://$vip:81/"; do
    wait_ok "$url"
done

# measure NAME URL ROUND: wrk throughput, then oha latency at a fixed rate.
: >"$work/results"
measure() {
    echo "$1 (round $3): wrk -t1 -c$connections -d${seconds}s $2" >&2
    wrk -t1 -c"$connections" -d"${seconds}s" "$2" >"$work/$1.$3.wrk"
    echo "$1 (round $3): oha -q $rate -z ${seconds}s" >&2
    "$oha" --no-tui -q "$rate" -z "${seconds}s" -c "$connections" -w --output-format json "$2" >"$work/$1.$3.json"
    echo "$1 $work/$1.$3.wrk $work/$1.$3.json" >>"$work/results"
}
round=1
while [ "$round" -le "$rounds" ]; do
    measure direct http://127.61.0.1:8080/ "$round"
    measure podvisor "http://$vip/" "$round"
    measure nginx http://127.61.0.2/ "$round"
    measure haproxy http://127.61.0.3/ "$round"
    measure direct-tcp http://127.61.0.1:8080/ "$round"
    measure podvisor-tcp "http://$vip:81/" "$round"
    measure haproxy-tcp http://127.61.0.3:81/ "$round"
    round=$((round + 1))
done

python3 - "$work/results" "$seconds" "$connections" "$rate" "$rounds" <<'EOF'
import json, re, statistics, sys

results, seconds, connections, rate, rounds = sys.argv[1:6]
runs = {}
for line in open(results):
    name, wrk_path, oha_path = line.split()
    text = open(wrk_path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    oha = json.load(open(oha_path))
    codes = oha["statusCodeDistribution"]
    failed = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(oha["errorDistribution"].values())
    p = oha["latencyPercentiles"]
    runs.setdefault(name, []).append(dict(
        rps=rps,
        wrk_errors=(int(errors.group(1)) if errors else 0),
        socket=(socket.group(1) if socket else ""),
        p50=p["p50"] * 1e6,
        p99=p["p99"] * 1e6,
        failed=failed,
        total=sum(codes.values()) + sum(oha["errorDistribution"].values()),
    ))
# Per target: the median of each figure over the rounds; failures and totals summed.
rows = {}
for name, rs in runs.items():
    rows[name] = dict(
        rps=statistics.median(r["rps"] for r in rs),
        p50=statistics.median(r["p50"] for r in rs),
        p99=statistics.median(r["p99"] for r in rs),
        wrk_errors=sum(r["wrk_errors"] for r in rs),
        socket="; ".join(r["socket"] for r in rs if r["socket"]),
        failed=sum(r["failed"] for r in rs),
        total=sum(r["total"] for r in rs),
        all_rps=[r["rps"] for r in rs],
    )

print("## Gateway vs nginx and HAProxy\n")
print(f"wrk 1 thread, {connections} keep-alive connections, {seconds} s per target (throughput); "
      f"oha at {rate} req/s, {connections} connections, {seconds} s (latency). Backend: nginx, 1 worker, "
      f"`return 200` from memory.")
if int(rounds) > 1:
    print(f"{rounds} rounds, the targets taking turns; each figure is the median over the rounds "
          f"(requests/s of every round in the last column).")
print()
print("| path | requests/s (wrk) | vs podvisor | p50 µs (oha) | p99 µs | p99 added over direct µs | failed (wrk non-2xx / oha) | requests/s per round |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for group, ref, direct in (("", "podvisor", "direct"), ("-tcp", "podvisor-tcp", "direct-tcp")):
    for name in [n for n in rows if n.endswith(group) and (group or not n.endswith("-tcp"))]:
        r = rows[name]
        ratio = r["rps"] / rows[ref]["rps"]
        added = r["p99"] - rows[direct]["p99"]
        socket = f" ({r['socket']})" if r["socket"] else ""
        print(f"| {name} | {r['rps']:,.0f} | {ratio:.2f}x | {r['p50']:.0f} | {r['p99']:.0f} | "
              f"{added:+.0f} | {r['wrk_errors']}{socket} / {r['failed']} of {r['total']} | "
              f"{' '.join(f'{x:,.0f}' for x in r['all_rps'])} |")
pv, ng, hp = rows["podvisor"], rows["nginx"], rows["haproxy"]
print()
print(f"Targets (DESIGN): L7 throughput >= nginx and HAProxy: podvisor {pv['rps']:,.0f} req/s = "
      f"{pv['rps'] / ng['rps']:.2f}x nginx, {pv['rps'] / hp['rps']:.2f}x HAProxy -> "
      f"{'met' if pv['rps'] >= ng['rps'] and pv['rps'] >= hp['rps'] else 'NOT met'}; "
      f"added p99 over direct <= 150 µs: {pv['p99'] - rows['direct']['p99']:+.0f} µs -> "
      f"{'met' if pv['p99'] - rows['direct']['p99'] <= 150 else 'NOT met'}.")
EOF

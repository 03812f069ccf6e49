#!/bin/sh
# Zero-drop rollout: a Deployment of 3 test-app replicas behind an HTTP Service, a fixed-rate
# load through podvisor's gateway with oha for the whole run, and rolling updates triggered
# during it; once on a node with ordered termination (the default), once on a node with
# --unordered-termination (upstream's race), side by side. Prints requests, failures (every
# request is recorded by oha), latency during the rollouts and the rollouts' durations.
#
# Usage: bench/rollout.sh [--rate R (1000)] [--seconds S (75)] [--rollouts N (20)]
#                         [--connections C (16)] [--only ordered|unordered]
# Needs: cargo, kubectl, python3. Installs oha (crates.io) into bench/.tools if it is not on
# PATH. Everything listens on loopback: pods 127.51.0.0/24, Services 127.52.0.0/24, node
# 127.53.0.1. A rollout starts every second after the previous one completed, as long as at
# least 10 s of load remain. Takes about 4 minutes.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

rate=1000
seconds=75
rollouts=20
connections=16
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rollouts) rollouts=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench/rollout.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$rate" "$seconds" "$rollouts" "$connections"; do
    case "$n" in '' | *[!0-9]*) echo "bench/rollout.sh: --rate, --seconds, --rollouts and --connections take whole numbers" >&2; exit 2 ;; esac
done
if [ "$rate" -lt 1 ] || [ "$rate" -gt 20000 ] || [ "$seconds" -lt 20 ] || [ "$seconds" -gt 300 ] ||
    [ "$rollouts" -lt 1 ] || [ "$rollouts" -gt 20 ] || [ "$connections" -lt 1 ] || [ "$connections" -gt 256 ]; then
    echo "bench/rollout.sh: --rate 1..20000, --seconds 20..300, --rollouts 1..20, --connections 1..256" >&2
    exit 2
fi
case "$only" in '' | ordered | unordered) ;; *) echo "bench/rollout.sh: --only ordered or unordered" >&2; exit 2 ;; esac
command -v kubectl >/dev/null || { echo "bench/rollout.sh: kubectl is not on PATH" >&2; exit 2; }

oha=$(command -v oha || true)
if [ -z "$oha" ]; then
    oha="$root/bench/.tools/bin/oha"
    if [ ! -x "$oha" ]; then
        echo "installing oha into bench/.tools (cargo install oha --locked)" >&2
        cargo install oha --locked --root "$root/bench/.tools" >&2
    fi
fi

cargo build --release --bin podvisor --bin podvisor-testapp >&2
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
podvisor="$target/release/podvisor"
testapp="$target/release/podvisor-testapp"

work=$(mktemp -d /tmp/podvisor-rollout.XXXXXX)
node_pid=""
oha_pid=""
cleanup() {
    for pid in $oha_pid $node_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $oha_pid $node_pid; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/image-map.yaml" <<EOF
images:
  podvisor/testapp:
    command: ["$testapp"]
EOF
# The app drains in-flight requests and exits on SIGTERM, as most servers do (Go's
# http.Server.Shutdown, Node's server.close); no preStop sleep papers over the race.
cat >"$work/web.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: app
        image: podvisor/testapp
        args: ["serve", "--port", "8080"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /readyz, port: http}
          periodSeconds: 1
EOF

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# run MODE: one node, the load, the rollouts; writes $work/MODE.{json,db,rollouts}.
run() {
    mode=$1
    data="$work/$mode-data"
    flags=""
    [ "$mode" = unordered ] && flags="--unordered-termination"
    # shellcheck disable=SC2086 # $flags is one optional flag
    "$podvisor" up -f "$work/web.yaml" --image-map "$work/image-map.yaml" --data-dir "$data" \
        --api-port 0 --color never --pod-cidr 127.51.0.0/24 --service-cidr 127.52.0.0/24 \
        --node-address 127.53.0.1 $flags >"$work/$mode-node.log" 2>&1 &
    node_pid=$!
    kc="$data/kubeconfig"
    i=0
    until [ -s "$kc" ] && grep -q "API at" "$work/$mode-node.log"; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$node_pid" 2>/dev/null; then
            echo "the $mode node did not start:" >&2
            cat "$work/$mode-node.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    kubectl --kubeconfig "$kc" rollout status deployment/web --timeout=60s >&2
    vip=$(kubectl --kubeconfig "$kc" get service web -o 'jsonpath={.spec.clusterIP}')
    i=0
    until [ "$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://$vip/', timeout=2).status)" 2>/dev/null)" = 200 ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "the gateway does not answer on $vip" >&2; exit 1; }
        sleep 0.1
    done

    echo "$mode: $rate req/s for ${seconds}s over $connections connections to http://$vip/, $rollouts rollouts" >&2
    now_ms >"$work/$mode.start"
    "$oha" --no-tui -w -z "${seconds}s" -q "$rate" -c "$connections" --output-format json \
        --db-url "$work/$mode.db" "http://$vip/" >"$work/$mode.json" 2>"$work/$mode-oha.err" &
    oha_pid=$!
    sleep 5 # warm-up: the load runs on its connections before the first rollout
    : >"$work/$mode.rollouts"
    load_end=$(($(cat "$work/$mode.start") + seconds * 1000 - 10000))
    n=1
    while [ $n -le "$rollouts" ] && [ "$(now_ms)" -lt "$load_end" ]; do
        start=$(now_ms)
        kubectl --kubeconfig "$kc" set env deployment/web "ROLLOUT=$n" >/dev/null
        kubectl --kubeconfig "$kc" rollout status deployment/web --timeout=120s >/dev/null
        end=$(now_ms)
        echo "$start $end" >>"$work/$mode.rollouts"
        echo "$mode: rollout $n took $((end - start)) ms" >&2
        n=$((n + 1))
        sleep 1 # the old pods finish terminating under load
    done
    wait "$oha_pid" || { echo "oha failed:" >&2; cat "$work/$mode-oha.err" >&2; exit 1; }
    oha_pid=""
    kill -INT "$node_pid"
    wait "$node_pid" || true
    node_pid=""
}

modes="ordered unordered"
[ -n "$only" ] && modes=$only
for mode in $modes; do
    run "$mode"
done
# shellcheck disable=SC2086 # $modes is one or two words
python3 "$root/bench/rollout_report.py" "$work" "$rate" "$seconds" "$connections" $modes

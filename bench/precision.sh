#!/bin/sh
# Lifecycle precision: DELETE → preStop hook start, and SIGKILL's lateness after the grace
# deadline, over N pods (see bench/precision.py).
# Usage: bench/precision.sh [--pods N (60)] [--batch B (10)] [--keep (keep the work dir: node log, t0 per DELETE)]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin podvisor --bin podvisor-testapp >&2
target="${CARGO_TARGET_DIR:-target}"
exec python3 bench/precision.py "$target/release/podvisor" "$target/release/podvisor-testapp" "$@"

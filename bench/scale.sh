#!/bin/sh
# Scale: 1,000 sleeping pods without and with an exec readiness probe every 10 s; start time,
# node CPU share and RSS at steady state (see bench/scale.py).
# Usage: bench/scale.sh [--pods N (1000)] [--steady S (30)]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin podvisor >&2
target="${CARGO_TARGET_DIR:-target}"
exec python3 bench/scale.py "$target/release/podvisor" "$@"

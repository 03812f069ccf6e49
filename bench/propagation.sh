#!/bin/sh
# Deletion → last request a gateway sends to the pod, p50/p99 over 100 deletions under load;
# the same with --unordered-termination side by side.
# Usage: bench/propagation.sh [--deletions N] [--unordered-deletions N] [--rate R] [--method POST|GET]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin podvisor --bin podvisor-testapp --example propagation
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/examples/propagation" --podvisor "$target/release/podvisor" \
    --testapp "$target/release/podvisor-testapp" "$@"

#!/bin/sh
# Lists 1,000 running pods through the API, side by side: JSON, Table, selectors, kubectl;
# then watch event latency (PATCH sent -> its watch event) with those pods.
# Usage: bench/list-pods.sh [--pods N] [--iterations N]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin podvisor --example list_pods
exec target/release/examples/list_pods --podvisor target/release/podvisor "$@"

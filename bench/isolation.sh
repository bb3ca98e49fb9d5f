#!/usr/bin/env bash
# What native network isolation costs, measured in one run (needs root):
#
# - the time to bring up (until every instance runs) 20 isolated instances versus 20 with
#   `network_mode: host`, best of 5 each, and the overhead per instance;
# - the HTTP/1.1 keep-alive request rate (4 connections, best of 3 x 3 s) between two isolated
#   instances over their bridge versus two plain processes on the machine's loopback.
#
# The measurement is the `bench_isolation` trial of wharf-supervisor's integration tests (the
# test binary is also the shim, the server and the load client). Release build.
#
# Usage: sudo bench/isolation.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "bench/isolation.sh: needs root (network namespaces, bridges, firewall rules)" >&2
  exit 1
fi
cargo test --release --quiet --manifest-path "$root/Cargo.toml" -p wharf-supervisor --test it \
  -- --ignored --exact bench_isolation --nocapture 2>&1 | grep '^bench:'

#!/usr/bin/env bash
# Whole-system benchmark of `wharf up -d --wait` on the native runtime.
#
# A generated project of 50 services: 10 chains of 5 health-gated levels (level N depends on level
# N-1 with `condition: service_healthy`). Each service becomes ready (creates a file its health
# check tests) a known delay after it starts, so the ideal time to an all-healthy stack is the
# longest chain of delays (5 x DELAY_MS). The overhead is the measured time minus that ideal.
# Also reports the daemon's resident memory with the 50 services running.
#
# The workload has a cost of its own: each service is `sh` running `rm`, `sleep` and `touch`, and
# every exec costs this machine about 0.7 ms. The "workload alone" row runs the same commands,
# chained the same way (level N+1 starts when level N's command has made its ready file), by a
# plain shell: no supervisor, no isolation, no health probes. It is the floor that no
# supervisor can go under on this machine; the overhead is quoted over the ideal and over it.
#
# The health check is `test -f READY`, which wharf answers without an exec (as a shell's builtin
# `test`; crates/wharf-runtime/src/native/builtin.rs). PROBE=exec uses `cat READY` instead, a
# probe that must exec a program each time.
#
# Usage: bench/up-chain.sh [RUNS]   (default 5; prints a Markdown table)
# WHARF=/path/to/wharf benchmarks that binary instead of building target/release/wharf.
set -euo pipefail
runs=${1:-5}
delay_ms=${DELAY_MS:-100}
interval=${START_INTERVAL:-5ms}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${WHARF:-}" ]; then
  wharf=$WHARF
else
  # With the small shim next to it, as installed (see wharf_runtime::native::shim_next_to).
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p wharf -p wharf-runtime \
    --bin wharf --bin wharf-shim
  wharf="$root/target/release/wharf"
fi

work=$(mktemp -d)
export WHARF_STATE_DIR="$work/state"
trap '"$wharf" -p bench down >/dev/null 2>&1 || true; kill "$(tr -dc 0-9 < "$WHARF_STATE_DIR/daemon.lock" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

compose="$work/compose.yaml"
delay_s=$(awk "BEGIN { printf \"%.3f\", $delay_ms / 1000 }")
{
  echo "name: bench"
  echo "services:"
  for chain in $(seq 1 10); do
    for level in $(seq 1 5); do
      svc="c${chain}l${level}"
      echo "  $svc:"
      echo "    command: [\"sh\", \"-c\", \"rm -f $work/$svc.ready; sleep $delay_s; touch $work/$svc.ready; exec sleep 100000\"]"
      [ -n "${HOST_NET:-}" ] && echo "    network_mode: host"
      echo "    healthcheck:"
      if [ "${PROBE:-}" = exec ]; then
        echo "      test: [\"CMD\", \"cat\", \"$work/$svc.ready\"]"
      else
        echo "      test: [\"CMD\", \"test\", \"-f\", \"$work/$svc.ready\"]"
      fi
      echo "      interval: 30s"
      echo "      start_period: 60s"
      echo "      start_interval: $interval"
      if [ "$level" -gt 1 ]; then
        echo "    depends_on:"
        echo "      c${chain}l$((level - 1)):"
        echo "        condition: service_healthy"
      fi
    done
  done
} > "$compose"

ideal_ms=$((5 * delay_ms))

# The workload alone: the same commands, chained by a shell, once per run.
floor_chain() { # chain
  for level in $(seq 1 5); do
    svc="c${1}l${level}"
    sh -c "rm -f $work/$svc.floor; sleep $delay_s; touch $work/$svc.floor"
  done
}
floors=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  for chain in $(seq 1 10); do floor_chain "$chain" & done
  wait
  end=$(date +%s%N)
  floors+=($(( (end - start) / 1000000 )))
done
rm -f "$work"/*.floor

results=()
rss_kb=0
for i in $(seq 1 "$runs"); do
  "$wharf" -f "$compose" down >/dev/null 2>&1 || true
  # A ready file left by the previous run would pass a probe that runs before the new
  # instance's `rm`: every run starts without them.
  rm -f "$work"/*.ready
  start=$(date +%s%N)
  "$wharf" -f "$compose" up -d --wait >/dev/null
  end=$(date +%s%N)
  results+=($(( (end - start) / 1000000 )))
  pid=$(tr -dc 0-9 < "$WHARF_STATE_DIR/daemon.lock")
  rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
done
"$wharf" -f "$compose" down >/dev/null

median_of() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median=$(median_of "${results[@]}")
floor=$(median_of "${floors[@]}")
echo "| measure | value |"
echo "|---|---|"
echo "| runs | $runs (each from no instance to all 50 healthy) |"
echo "| ideal (5 levels x ${delay_ms} ms) | ${ideal_ms} ms |"
echo "| health check | ${PROBE:-builtin} ($( [ "${PROBE:-}" = exec ] && echo "cat READY, an exec per probe" || echo "test -f READY, answered without an exec")) |"
echo "| workload alone (same commands chained by a shell), median | ${floor} ms (runs: ${floors[*]}) |"
echo "| all runs, ms | ${results[*]} |"
echo "| median up -d --wait | ${median} ms |"
echo "| median overhead over ideal | $((median - ideal_ms)) ms |"
echo "| median overhead over the workload alone | $((median - floor)) ms |"
echo "| daemon RSS with 50 services running | $((rss_kb / 1024)) MiB (${rss_kb} KiB) |"

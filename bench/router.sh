#!/usr/bin/env bash
# wharf's router against nginx, HAProxy and Caddy (Debian's packages), all in front of the same
# upstream on 127.0.0.1, driven by wrk with keep-alive: small responses, then 16 KiB responses,
# plus the upstream directly. Prints a Markdown table of requests/s, p50 and p99 (medians of RUNS
# runs; each run visits every target in turn, so that the machine's noise spreads over all).
#
#   bench/router.sh                      # 1 run of 10 s per target and size
#   RUNS=3 DURATION=10s bench/router.sh  # medians of 3 runs
#
# Settings (environment): THREADS (workers of every proxy and of the upstream; default: nproc),
# CONNECTIONS (wrk -c, default 64), WRK_THREADS (wrk -t, default 2), DURATION, RUNS, TARGETS
# (default "direct wharf-daemon wharf nginx haproxy haproxy-tcp caddy"; wharf-daemon only when
# the wharf binary has the `routes` verb), KEEP=1 keeps the temporary directory.
#
# `haproxy-tcp` is the byte-relay floor, not a competitor: HAProxy in `mode tcp` (nbthread
# THREADS) copies bytes between each client connection and one upstream connection of its own,
# with no HTTP work at all (no parsing, no routing, no headers added, no pooling: the client's
# keep-alive connection maps to one upstream connection). It is what any proxy could reach on
# this machine, with the same upstream and the same wrk; an HTTP proxy's distance to it is the
# cost of its HTTP work.
#
# The upstream is nginx serving two static files (13 bytes at /small, 16 KiB at /16k). Every
# proxy keeps connections to it alive, uses THREADS workers, logs nothing, and sets
# X-Forwarded-For/-Proto/-Host and a request id, as wharf's router does. wharf's router runs two
# ways: `wharf-daemon` is the product's path, a wharf daemon of its own (WHARF_STATE_DIR in the
# temporary directory) that runs the upstream as a service of a Compose project (network_mode:
# host, `wharf.http.port`) and routes to it on `x-wharf.router.http`; `wharf` is
# crates/wharf-router/examples/bench_router.rs, a static one-route table served by
# `Router::serve_on_threads`. With the daemon, every target uses its upstream.
# Every program runs in a session of its own (setsid), as the upstream does when wharf's daemon
# runs it: with the kernel's autogroup scheduling (sched_autogroup_enabled) the CPU is shared
# between sessions first, so wrk, the proxy and the upstream must each have one, whichever starts
# the upstream; otherwise the upstream alone in its session gets half the machine and every
# proxy measures about 30% lower.
# Everything listens on 127.0.0.1 only; wrk runs bounded (DURATION) and talks to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-$(nproc)}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-1}
WHARF_BIN=target/release/wharf
if [[ -z ${TARGETS:-} ]]; then
  TARGETS="direct wharf nginx haproxy haproxy-tcp caddy"
  if cargo build --release --quiet -p wharf && "$WHARF_BIN" routes --help >/dev/null 2>&1; then
    TARGETS="direct wharf-daemon wharf nginx haproxy haproxy-tcp caddy"
  fi
fi

need=()
for tool in nginx haproxy caddy wrk; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts the packaged services on install; they are not part of the benchmark.
for service in nginx haproxy caddy; do
  systemctl stop "$service" >/dev/null 2>&1 || true
done

echo "building the router example (release)" >&2
cargo build --release --quiet -p wharf-router --example bench_router
ROUTER_BIN=target/release/examples/bench_router

WORK=$(mktemp -d /tmp/wharf-bench-router.XXXXXX)
chmod 755 "$WORK" # nginx's workers run as www-data
PIDS=()
cleanup() {
  if [[ -n ${DAEMON_PID:-} ]]; then
    "$WHARF_BIN" -f "$WORK/compose.yaml" down >/dev/null 2>&1 || true
  fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() { # name url
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not answer $2; its output is in $WORK/$1.log" >&2
  tail -20 "$WORK/$1.log" >&2 || true
  exit 1
}

# The upstream: two static files.
mkdir -p "$WORK/www" "$WORK/tmp"
printf 'hello, wharf\n' >"$WORK/www/small"
head -c 16384 /dev/zero | tr '\0' 'w' >"$WORK/www/16k"
UPSTREAM_PORT=$(free_port)
NGINX_COMMON="
  client_body_temp_path $WORK/tmp/body; proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fcgi; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
cat >"$WORK/upstream.conf" <<EOF
worker_processes $THREADS;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream-error.log;
events { worker_connections 4096; }
http {
  $NGINX_COMMON
  default_type application/octet-stream;
  open_file_cache max=16;
  sendfile on;
  server { listen 127.0.0.1:$UPSTREAM_PORT; root $WORK/www; }
}
EOF
if [[ " $TARGETS " == *" wharf-daemon "* ]]; then
  # The upstream as a service of a wharf project, behind the daemon's router.
  export WHARF_STATE_DIR=$WORK/state
  DAEMON_ROUTER_PORT=$(free_port)
  cat >"$WORK/compose.yaml" <<EOF
name: wharf-bench-router
x-wharf:
  router:
    http: 127.0.0.1:$DAEMON_ROUTER_PORT
    access_log: "off"
services:
  upstream:
    command: ["nginx", "-c", "$WORK/upstream.conf", "-p", "$WORK"]
    network_mode: host
    labels:
      wharf.http.port: "$UPSTREAM_PORT"
EOF
  setsid "$WHARF_BIN" daemon >"$WORK/wharf-daemon.log" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  for _ in $(seq 1 100); do
    [[ -S $WHARF_STATE_DIR/wharf.sock ]] && break
    sleep 0.1
  done
  "$WHARF_BIN" -f "$WORK/compose.yaml" up -d >"$WORK/wharf-up.log" 2>&1 || {
    tail -n 20 "$WORK/wharf-up.log" "$WORK/wharf-daemon.log" >&2
    exit 1
  }
  cp "$WORK/wharf-daemon.log" "$WORK/upstream.log"
else
  setsid nginx -c "$WORK/upstream.conf" -p "$WORK" >"$WORK/upstream.log" 2>&1 &
  PIDS+=($!)
fi
wait_ready upstream "http://127.0.0.1:$UPSTREAM_PORT/small"

declare -A PORT WORKERS
PORT[direct]=$UPSTREAM_PORT
WORKERS[direct]="nginx worker_processes $THREADS"

start_wharf_daemon() {
  PORT[wharf-daemon]=$DAEMON_ROUTER_PORT
  WORKERS[wharf-daemon]="serve_on_threads $(nproc), in the daemon"
  wait_ready wharf-daemon "http://127.0.0.1:$DAEMON_ROUTER_PORT/small"
  "$WHARF_BIN" -f "$WORK/compose.yaml" routes >&2
}

start_wharf() {
  PORT[wharf]=$(free_port)
  setsid "$ROUTER_BIN" --listen "127.0.0.1:${PORT[wharf]}" --upstream "127.0.0.1:$UPSTREAM_PORT" \
    --threads "$THREADS" >"$WORK/wharf.log" 2>&1 &
  PIDS+=($!)
  WORKERS[wharf]="serve_on_threads $THREADS"
  wait_ready wharf "http://127.0.0.1:${PORT[wharf]}/small"
}

start_nginx() {
  PORT[nginx]=$(free_port)
  cat >"$WORK/nginx.conf" <<EOF
worker_processes $THREADS;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  $NGINX_COMMON
  upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:${PORT[nginx]};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-Id \$request_id;
    }
  }
}
EOF
  setsid nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.log" 2>&1 &
  PIDS+=($!)
  WORKERS[nginx]="worker_processes $THREADS"
  wait_ready nginx "http://127.0.0.1:${PORT[nginx]}/small"
}

start_haproxy() {
  PORT[haproxy]=$(free_port)
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $THREADS
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend web
  bind 127.0.0.1:${PORT[haproxy]}
  option forwardfor
  unique-id-format %{+X}o\ %ci%cp%fp%Ts%rt%pid
  http-request set-header X-Request-Id %[unique-id]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend app
backend app
  server up 127.0.0.1:$UPSTREAM_PORT
EOF
  setsid haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  PIDS+=($!)
  WORKERS[haproxy]="nbthread $THREADS"
  wait_ready haproxy "http://127.0.0.1:${PORT[haproxy]}/small"
}

start_haproxy_tcp() {
  PORT[haproxy-tcp]=$(free_port)
  cat >"$WORK/haproxy-tcp.cfg" <<EOF
global
  nbthread $THREADS
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend relay
  bind 127.0.0.1:${PORT[haproxy-tcp]}
  default_backend app
backend app
  server up 127.0.0.1:$UPSTREAM_PORT
EOF
  setsid haproxy -db -f "$WORK/haproxy-tcp.cfg" >"$WORK/haproxy-tcp.log" 2>&1 &
  PIDS+=($!)
  WORKERS[haproxy-tcp]="nbthread $THREADS, mode tcp: the byte-relay floor"
  wait_ready haproxy-tcp "http://127.0.0.1:${PORT[haproxy-tcp]}/small"
}

start_caddy() {
  PORT[caddy]=$(free_port)
  cat >"$WORK/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:${PORT[caddy]} {
  reverse_proxy 127.0.0.1:$UPSTREAM_PORT {
    header_up X-Request-Id {http.request.uuid}
  }
}
EOF
  XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK GOMAXPROCS=$THREADS \
    setsid caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
  PIDS+=($!)
  WORKERS[caddy]="GOMAXPROCS $THREADS"
  wait_ready caddy "http://127.0.0.1:${PORT[caddy]}/small"
}

for t in $TARGETS; do
  case $t in
    direct) ;;
    wharf-daemon) start_wharf_daemon ;;
    wharf) start_wharf ;;
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
    haproxy-tcp) start_haproxy_tcp ;;
    caddy) start_caddy ;;
    *) echo "unknown target $t (direct wharf-daemon wharf nginx haproxy haproxy-tcp caddy)" >&2; exit 2 ;;
  esac
done

# wrk's latency (e.g. 1.23ms, 845.00us, 1.02s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.3f", n }'
}

# One wrk run: prints "rps p50_ms p99_ms errors".
measure() { # port path
  local out
  out=$(setsid wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$1$2")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
      for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $errors"
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

RESULTS=$WORK/results
: >"$RESULTS"
for t in $TARGETS; do # warm-up: connections, caches, the JIT of nobody
  wrk -t1 -c8 -d2s "http://127.0.0.1:${PORT[$t]}/small" >/dev/null
done
for run in $(seq 1 "$RUNS"); do
  for size in small 16k; do
    for t in $TARGETS; do
      echo "run $run/$RUNS: $t /$size" >&2
      echo "$t $size $(measure "${PORT[$t]}" "/$size")" >>"$RESULTS"
    done
  done
done

echo
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, keep-alive; medians of $RUNS run(s);" \
  "$(nproc) CPUs shared by wrk, the proxy and the upstream (nginx, worker_processes $THREADS)"
echo
echo "| target | workers | small req/s | small p50 ms | small p99 ms | 16 KiB req/s | 16 KiB p50 ms | 16 KiB p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for t in $TARGETS; do
  row="| $t | ${WORKERS[$t]} |"
  errors=0
  for size in small 16k; do
    for col in 3 4 5; do
      row+=" $(awk -v t="$t" -v s="$size" -v c="$col" '$1 == t && $2 == s {print $c}' "$RESULTS" | median) |"
    done
    errors=$((errors + $(awk -v t="$t" -v s="$size" '$1 == t && $2 == s {n += $6} END {print n + 0}' "$RESULTS")))
  done
  echo "$row $errors |"
done
for peer in nginx haproxy haproxy-tcp; do
  if [[ " $TARGETS " == *" wharf "* && " $TARGETS " == *" $peer "* ]]; then
    for size in small 16k; do
      w=$(awk -v s="$size" '$1 == "wharf" && $2 == s {print $3}' "$RESULTS" | median)
      n=$(awk -v p="$peer" -v s="$size" '$1 == p && $2 == s {print $3}' "$RESULTS" | median)
      awk -v w="$w" -v n="$n" -v p="$peer" -v s="$size" \
        'BEGIN {printf "\nwharf / %s requests/s (%s): %.2fx", p, s, w / n}'
    done
    echo
  fi
done

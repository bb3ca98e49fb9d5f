#!/usr/bin/env bash
# The same health-gated stack on the Docker Engine, brought up by Debian's docker-compose and by
# `wharf up --runtime docker`, from no containers to all healthy; then `up` again with one service
# changed (only it is recreated).
#
# The stack (a busybox image built once, locally, FROM scratch with Debian's busybox-static): db
# and cache with health checks, api after both are healthy, web after api is healthy, worker after
# api. docker-compose: `up -d` waits for the service_healthy dependencies itself; a poll of
# `docker inspect` (every 50 ms) then waits until every container is healthy or running, as
# `up --wait` would. wharf: `wharf up -d --wait --runtime docker` (release build, its own
# WHARF_STATE_DIR), which returns when every instance is healthy. wharf's daemon is started once
# before the runs (a running service, as the Docker Engine is for docker-compose); `down` between
# runs is not timed for either.
#
# Usage: bench/docker-up.sh [RUNS]   (default 5; prints a Markdown table)
# WHARF=/path/to/wharf benchmarks that binary instead of building target/release/wharf.
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${WHARF:-}" ]; then
  wharf=$WHARF
else
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p wharf
  wharf="$root/target/release/wharf"
fi
image=wharf-bench-busybox:latest

work=$(mktemp -d)
export WHARF_STATE_DIR="$work/state"
daemon=
cleanup() {
  if [ -n "$daemon" ]; then
    "$wharf" -f "$work/benchwharf.yaml" down >/dev/null 2>&1 || true
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  for p in benchcompose benchwharf; do
    docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f >/dev/null
    docker network ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker network rm >/dev/null
  done
  docker rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/bb"
cp /bin/busybox "$work/bb/busybox"
cat > "$work/bb/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/www", "/tmp"]
EOF
docker build -q -t "$image" "$work/bb" >/dev/null 2>&1

# $1: project name, $2: the worker's greeting (the change of the second `up`).
write_compose() {
  {
  # docker-compose 1.29 does not know the top-level `name` (it gets `-p`).
  if [ "$1" = benchwharf ]; then echo "name: $1"; fi
  cat <<EOF
x-web: &web
  image: $image
  init: true
  command: ["sh", "-c", "echo ok > /www/index.html; exec httpd -f -p 80 -h /www"]
  healthcheck:
    test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
    interval: 500ms
    timeout: 2s
    retries: 20
services:
  db: *web
  cache: *web
  api:
    <<: *web
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
  web:
    <<: *web
    depends_on:
      api: {condition: service_healthy}
  worker:
    image: $image
    init: true
    command: ["sh", "-c", "echo \$\$GREETING; exec sleep 100000"]
    environment:
      GREETING: $2
    depends_on:
      api: {condition: service_healthy}
EOF
  } > "$work/$1.yaml"
}

now_ms() { date +%s%3N; }

# Every container of project $1 healthy (or running, without a health check).
all_ready() {
  local ids states
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1")
  [ "$(echo "$ids" | grep -c .)" -eq 5 ] || return 1
  states=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)
  ! echo "$states" | grep -qv -e '^running healthy$' -e '^running none$'
}

wait_ready() {
  until all_ready "$1"; do sleep 0.05; done
}

compose_up() {
  docker-compose -f "$work/benchcompose.yaml" -p benchcompose up -d >/dev/null 2>&1
  wait_ready benchcompose
}
compose_down() { docker-compose -f "$work/benchcompose.yaml" -p benchcompose down >/dev/null 2>&1; }
wharf_up() { "$wharf" -f "$work/benchwharf.yaml" up -d --wait --runtime docker >/dev/null 2>&1; }
wharf_down() { "$wharf" -f "$work/benchwharf.yaml" down >/dev/null 2>&1; }

# wharf's daemon, kept by its pid.
"$wharf" daemon >"$work/daemon.log" 2>&1 &
daemon=$!
until [ -S "$WHARF_STATE_DIR/wharf.sock" ]; do
  kill -0 "$daemon" 2>/dev/null || { echo "wharf daemon did not start:"; cat "$work/daemon.log"; exit 1; }
  sleep 0.05
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -a c_cold w_cold c_change w_change
for i in $(seq "$runs"); do
  write_compose benchcompose hello
  write_compose benchwharf hello
  t=$(now_ms); compose_up; c_cold+=($(( $(now_ms) - t )))
  write_compose benchcompose bonjour
  t=$(now_ms); compose_up; c_change+=($(( $(now_ms) - t )))
  compose_down
  t=$(now_ms); wharf_up; w_cold+=($(( $(now_ms) - t )))
  all_ready benchwharf || { echo "wharf returned before the stack was ready"; exit 1; }
  write_compose benchwharf bonjour
  t=$(now_ms); wharf_up; w_change+=($(( $(now_ms) - t )))
  all_ready benchwharf || { echo "wharf returned before the stack was ready"; exit 1; }
  wharf_down
done

cm=$(printf '%s\n' "${c_cold[@]}" | median)
wm=$(printf '%s\n' "${w_cold[@]}" | median)
cc=$(printf '%s\n' "${c_change[@]}" | median)
wc=$(printf '%s\n' "${w_change[@]}" | median)
echo "docker-compose $(docker-compose version --short), Docker Engine $(docker version -f '{{.Server.Version}}'), $("$wharf" --version), $runs runs, $(nproc) cores"
echo
echo "| | docker-compose up -d + poll | wharf up -d --wait --runtime docker | ratio (compose / wharf) |"
echo "|---|---|---|---|"
echo "| no containers -> all healthy (median ms) | $cm | $wm | $(awk "BEGIN { printf \"%.2f\", $cm / $wm }") |"
echo "| up again, one service changed (median ms) | $cc | $wc | $(awk "BEGIN { printf \"%.2f\", $cc / $wc }") |"
echo
echo "all runs (ms): compose cold ${c_cold[*]}; wharf cold ${w_cold[*]}; compose change ${c_change[*]}; wharf change ${w_change[*]}"

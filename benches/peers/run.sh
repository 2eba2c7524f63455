#!/usr/bin/env bash
# Runs every peer scenario on every runtime and writes the table to benches/peers/RESULTS.md.
#
#   bash benches/peers/run.sh            # everything, about 4 minutes
#   SECS=10 bash benches/peers/run.sh    # longer network runs
#
# One process per runtime for the micro scenarios; one server process per runtime for the
# network ones, all driven by the same load: `weft-peers echo-load` (one epoll thread) for
# echo, wrk (one thread, keep-alive) for HTTP. PEERS_WORKERS (default 2) sets the workers of
# every multi-threaded server. Installs wrk and strace with apt-get if they are missing.
#
# Besides time per operation, every network run records the server's CPU time (user + sys,
# from /proc/PID/stat) per request over the measured window, the figure that survives this
# noisy machine; a second, shorter run counts the server's syscalls per request with
# `perf stat -e raw_syscalls:sys_enter` (or, without perf, `strace -f -c`, which slows the
# server so much that timing-dependent syscalls, such as a read that finds nothing, vanish:
# weft's echo showed 2.1 syscalls per round trip under strace and 3.2 under perf); and 9,000
# idle connections per echo server give its resident memory per idle connection.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-5}
RUNTIMES=(weft may tokio-ct tokio-mt std)
# The network scenarios also run the two floors: hand-written single-threaded servers on
# epoll (src/rt_floor.rs) and on io_uring (src/rt_uring_floor.rs), what a request costs with
# no runtime at all.
NET_RUNTIMES=("${RUNTIMES[@]}" epoll-floor uring-floor)
PORT=7411

missing=()
for tool in wrk strace; do   # perf is used when present (its package follows the kernel)
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
source ./servers.sh
results=$(mktemp)

for rt in "${RUNTIMES[@]}"; do
  echo "== micro: $rt"
  "$bin" micro "$rt" | sed "s/^/$rt\t/" | tee -a "$results"
done

# Counts the server's syscalls while "$@" runs: prints what "$@" printed, then a last line
# with the count. perf stat when it works here, strace otherwise (see the top).
count_syscalls() {
  local out tracer
  out=$(mktemp)
  if perf stat -e raw_syscalls:sys_enter -p "$server" -- true >/dev/null 2>&1; then
    perf stat -e raw_syscalls:sys_enter -x, -o "$out" -p "$server" &
    tracer=$!
    sleep 0.5
    "$@"
    kill -INT "$tracer"
    wait "$tracer" || true
    awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$out"
  else
    strace -f -c -q -o "$out" -p "$server" &
    tracer=$!
    sleep 1   # attached to every thread before the load starts
    "$@"
    kill -INT "$tracer"
    wait "$tracer" || true
    awk '$NF == "total" {print $4}' "$out"
  fi
  rm -f "$out"
}

# a / b with two decimals (syscalls or CPU nanoseconds per request).
per() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

for rt in "${NET_RUNTIMES[@]}"; do
  echo "== echo: $rt"
  start_server echo-server "$rt"
  for conns in 1 100 1000; do
    "$bin" echo-load "$addr" "$conns" "$SECS" "$server" | sed "s/^/$rt\t/" | tee -a "$results"
  done
  stderr=$(mktemp)
  calls=$(count_syscalls "$bin" echo-load "$addr" 100 2 2>"$stderr" | tail -n1)
  trips=$(awk '/warm-up included/ {print $NF}' "$stderr")
  rm -f "$stderr"
  printf '%s\techo_100_sys\t%s\n' "$rt" "$(per "$calls" "$trips")" | tee -a "$results"
  stop_server
done

for rt in "${NET_RUNTIMES[@]}"; do
  echo "== idle connections: $rt"
  start_server echo-server "$rt"
  "$bin" idle-load "$addr" 9000 "$server" | sed "s/^/$rt\t/" | tee -a "$results" ||
    echo "($rt: the idle run failed)"
  stop_server
done

# wrk prints "Requests/sec: N" and "N requests in"; the table wants nanoseconds per request,
# and the server's CPU nanoseconds per request.
http_run() {
  local rt=$1 kind=$2 name=${3:-$1} key=${2:-http}
  echo "== http: $rt${kind:+ ($kind)}"
  start_server http-server "$rt"
  for conns in 100 1000; do
    wrk -t1 -c"$conns" -d1s "http://$addr/" >/dev/null   # warm-up
    local cpu0 out cpu1 rps requests
    cpu0=$("$bin" cpu "$server")
    out=$(wrk -t1 -c"$conns" -d"${SECS}s" "http://$addr/")
    cpu1=$("$bin" cpu "$server")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '%s\t%s_%s\t%s\n%s\t%s_%s_cpu\t%s\n' \
      "$name" "$key" "$conns" "$(awk -v r="$rps" 'BEGIN {printf "%.1f", 1e9 / r}')" \
      "$name" "$key" "$conns" "$(per "$((cpu1 - cpu0))" "$requests")" | tee -a "$results"
  done
  if [[ -z "$kind" ]]; then
    out=$(count_syscalls wrk -t1 -c100 -d2s "http://$addr/")
    calls=$(tail -n1 <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '%s\thttp_100_sys\t%s\n' "$name" "$(per "$calls" "$requests")" | tee -a "$results"
  fi
  stop_server
}
for rt in "${NET_RUNTIMES[@]}"; do
  http_run "$rt" ""
done
http_run may_minihttp minihttp may

{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) vCPUs ($(uname -sr), $(rustc --version | cut -d' ' -f1-2))"
  echo "by \`bash benches/peers/run.sh\` (network runs ${SECS} s each, PEERS_WORKERS=${PEERS_WORKERS:-2})."
  echo "Each cell: time per operation (ratio to weft; above 1× means weft is faster)."
  echo
  "$bin" table "$results"
} > RESULTS.md
cp "$results" results.tsv
echo
cat RESULTS.md

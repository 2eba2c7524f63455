#!/usr/bin/env bash
# Runs every peer scenario on every runtime and writes the table to benches/peers/RESULTS.md.
#
#   bash benches/peers/run.sh            # everything, about 4 minutes
#   SECS=10 bash benches/peers/run.sh    # longer network runs
#
# One process per runtime for the micro scenarios; one server process per runtime for the
# network ones, all driven by the same load: `weft-peers echo-load` (one epoll thread) for
# echo, wrk (one thread, keep-alive) for HTTP. PEERS_WORKERS (default 2) sets the workers of
# every multi-threaded server. Installs wrk with apt-get if it is missing.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-5}
RUNTIMES=(weft may tokio-ct tokio-mt std)
PORT=7411

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release
# Wherever cargo put it: CARGO_TARGET_DIR, a config file or the default `target/`.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${target_dir:-target}/release/weft-peers
results=$(mktemp)
server=

stop_server() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
trap stop_server EXIT

# Starts `weft-peers KIND RUNTIME ADDR` and waits (at most 10 s) until it accepts.
start_server() {
  PORT=$((PORT + 1))
  addr=127.0.0.1:$PORT
  "$bin" "$1" "$2" "$addr" &
  server=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the $2 $1 did not start listening on $addr" >&2
  exit 1
}

for rt in "${RUNTIMES[@]}"; do
  echo "== micro: $rt"
  "$bin" micro "$rt" | sed "s/^/$rt\t/" | tee -a "$results"
done

for rt in "${RUNTIMES[@]}"; do
  echo "== echo: $rt"
  start_server echo-server "$rt"
  for conns in 1 100 1000; do
    "$bin" echo-load "$addr" "$conns" "$SECS" | sed "s/^/$rt\t/" | tee -a "$results"
  done
  stop_server
done

# wrk prints "Requests/sec: N"; the table wants nanoseconds per request.
http_run() {
  local rt=$1 kind=$2
  echo "== http: $rt${kind:+ ($kind)}"
  start_server http-server "$rt"
  wrk -t1 -c100 -d1s "http://$addr/" >/dev/null   # warm-up
  rps=$(wrk -t1 -c100 -d"${SECS}s" "http://$addr/" | awk '/Requests\/sec/ {print $2}')
  stop_server
  printf '%s\t%s\t%s\n' "${3:-$rt}" "${kind:-http}_100" "$(awk -v r="$rps" 'BEGIN {printf "%.1f", 1e9 / r}')" \
    | tee -a "$results"
}
for rt in "${RUNTIMES[@]}"; do
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

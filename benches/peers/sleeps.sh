#!/usr/bin/env bash
# How often each echo/HTTP server sleeps and wakes, next to the hand-written epoll floor:
# per request, the server's CPU time, context switches, syscalls, epoll waits, futex calls
# and sched_yields, counted with `perf stat` over the measured window.
#
#   bash benches/peers/sleeps.sh              # echo 1, 100 and 1,000, HTTP 100 and 1,000; 3 rounds
#   ROUNDS=5 SECS=5 RUNTIMES="weft tokio-mt epoll-floor" bash benches/peers/sleeps.sh
#
# `weft` runs on its default backend (io_uring), `weft-epoll` with WEFT_IO=epoll.
# Rounds alternate the runtimes (weft, tokio, floor, weft, ...), so a slow minute of this
# shared VM lands on all of them. Needs perf (its package follows the kernel) and wrk; one
# line per run: runtime, case, then the figures per request.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
read -r -a RUNTIMES <<<"${RUNTIMES:-weft weft-epoll tokio-mt epoll-floor uring-floor}"
CASES=${CASES:-"echo_1 echo_100 echo_1000 http_100 http_1000"}
PORT=7611
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
source ./servers.sh

EVENTS=cpu-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield

# Runs "$@" under `perf stat -p $server`; prints the counters as name=value lines.
counted() {
  local out tracer
  out=$(mktemp)
  perf stat -e "$EVENTS" -x, -o "$out" -p "$server" &
  tracer=$!
  sleep 0.3
  "$@"
  kill -INT "$tracer"
  wait "$tracer" || true
  awk -F, 'NF > 3 && $1 ~ /^[0-9.]+$/ {print $3 "=" $1}' "$out"
  rm -f "$out"
}

printf 'runtime\tcase\trequests\tcpu_us\tctx_sw\tsyscalls\tepoll_waits\tfutex\tsched_yield\n'
for round in $(seq "$ROUNDS"); do
  for rt in "${RUNTIMES[@]}"; do
    for case in $CASES; do
      kind=${case%_*}
      conns=${case#*_}
      start_server "$kind-server" "$rt"
      if [[ $kind == echo ]]; then
        "$bin" echo-load "$addr" "$conns" 1 >/dev/null 2>&1   # warm-up
        log=$(mktemp)
        counters=$(counted "$bin" echo-load "$addr" "$conns" "$SECS" 2>"$log" | grep =)
        requests=$(awk '/warm-up included/ {print $NF}' "$log")
        rm -f "$log"
      else
        wrk -t1 -c"$conns" -d1s "http://$addr/" >/dev/null   # warm-up
        log=$(mktemp)
        counters=$(counted wrk -t1 -c"$conns" -d"${SECS}s" "http://$addr/" 2>/dev/null | tee "$log" | grep '=')
        requests=$(awk '/requests in/ {print $1}' "$log")
        rm -f "$log"
      fi
      stop_server
      get() { awk -F= -v k="$1" '$1 == k {print $2}' <<<"$counters"; }
      awk -v rt="$rt" -v c="$case" -v n="$requests" \
        -v cpu="$(get cpu-clock)" -v cs="$(get context-switches)" \
        -v sc="$(get raw_syscalls:sys_enter)" \
        -v ew="$(get syscalls:sys_enter_epoll_wait)" -v ep="$(get syscalls:sys_enter_epoll_pwait)" \
        -v fx="$(get syscalls:sys_enter_futex)" -v sy="$(get syscalls:sys_enter_sched_yield)" \
        'BEGIN { printf "%s\t%s\t%d\t%.2f\t%.3f\t%.2f\t%.3f\t%.3f\t%.3f\n", rt, c, n,
                 cpu * 1e3 / n, cs / n, sc / n, (ew + ep) / n, fx / n, sy / n }'
    done
  done
done

# Sourced by run.sh and sleeps.sh: builds weft-peers and starts and stops one server at a time.
# Sets `bin` (the binary); `start_server KIND RUNTIME` sets `server` (its pid) and `addr`,
# taking the next port after PORT; `stop_server` ends it (also on exit).

cargo build --release -q
# Wherever cargo put it: CARGO_TARGET_DIR, a config file or the default `target/`.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${target_dir:-target}/release/weft-peers
server=

stop_server() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
trap stop_server EXIT

# Starts `weft-peers KIND RUNTIME ADDR` and waits (at most 10 s) until it accepts. The runtime
# `weft` is weft on its default backend (io_uring where available), `weft-uring` forces
# `WEFT_IO=uring` and `weft-epoll` forces `WEFT_IO=epoll`.
start_server() {
  PORT=$((PORT + 1))
  addr=127.0.0.1:$PORT
  case $2 in
    weft-uring) WEFT_IO=uring "$bin" "$1" weft "$addr" & ;;
    weft-epoll) WEFT_IO=epoll "$bin" "$1" weft "$addr" & ;;
    *) "$bin" "$1" "$2" "$addr" & ;;
  esac
  server=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the $2 $1 did not start listening on $addr" >&2
  exit 1
}

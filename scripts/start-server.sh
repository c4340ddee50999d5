# Sourced by the scripts that test a running server. start_server runs "$hark" serve in the
# background (its environment says where its data is and to listen on 127.0.0.1:0), writing
# its log to "$data/server.log", and sets `server` (its pid) and `base` (the URL it chose).
# Without a URL within 10 s it prints the log and returns 1.
start_server() {
  "$hark" serve 2>"$data/server.log" &
  server=$!
  base=
  for _ in $(seq 100); do
    base=$(sed -n 's/^hark: listening on \(http:[^ ]*\)$/\1/p' "$data/server.log")
    [ -n "$base" ] && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "hark serve did not start:" >&2
  cat "$data/server.log" >&2
  return 1
}

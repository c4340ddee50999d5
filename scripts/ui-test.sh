#!/usr/bin/env bash
# Runs the browser tests (tests/ui/*.test.mjs, Node's test runner driving the machine's
# Chromium through playwright-core) against a real `hark serve`.
#
# Installs Node.js, npm and Chromium on Debian (as root) when missing, the tests' npm packages
# when package-lock.json is newer than them, builds hark, fetches the speech model (so that
# uploaded speech gets a transcript), starts the server on a free port with a temporary data
# directory (SQLite), runs the tests one file at a time, and ends with one tally line in the
# form scripts/test.sh adds up. Exits non-zero when a test failed.
#
# Arguments: test files to run (default: all of tests/ui/*.test.mjs), or `--bench` to run the
# library's rendering benchmark (tests/ui/bench.mjs) instead.
# Environment: HARK_BIN (a hark binary to run instead of building one), HARK_CORPUS (the audio
# corpus, default target/corpus, made by tests/corpus/make_corpus.sh), HARK_SCREENSHOTS (set:
# the tests write docs/screenshots/*.png).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/start-server.sh
bench=
if [ "${1:-}" = --bench ]; then bench=1; shift; fi

# Node.js 20 or later (playwright-core needs it; the runner's options below are from 20.10)
# and the browser the tests drive.
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2; exit 1
  fi
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "the browser tests need Node.js 20 or later, this is $(node --version)" >&2; exit 1
fi

# The tests' packages, exactly as locked (playwright-core downloads no browser).
if [ ! -d tests/ui/node_modules ] || [ tests/ui/package-lock.json -nt tests/ui/node_modules ]; then
  npm ci --prefix tests/ui --no-audit --no-fund
  touch tests/ui/node_modules
fi

if [ -n "${HARK_BIN:-}" ]; then
  hark=$(realpath "$HARK_BIN")
else
  cargo build --quiet --locked -p hark
  hark=$(realpath "${CARGO_TARGET_DIR:-target}/debug/hark")
fi
# The speech model, so that uploads are transcribed for real.
bash scripts/speech-model.sh
model=$PWD/target/models/whisper-tiny-en

corpus=${HARK_CORPUS:-target/corpus}
if [ ! -f "$corpus/manifest.tsv" ]; then
  echo "no audio corpus at $corpus: make one with 'bash tests/corpus/make_corpus.sh $corpus'" \
    "(scripts/test.sh does) or point HARK_CORPUS at one" >&2
  exit 1
fi
export HARK_CORPUS=$(cd "$corpus" && pwd)

# The server, on a port of its choosing, with data that lives as long as this run.
data=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; fi
  rm -rf "$data"
}
trap cleanup EXIT
# Exported, so that a test running "$HARK_BIN" (say, `user add --role admin`) reaches the
# same database as the server.
export HARK_DATA_DIR=$data HARK_LISTEN=127.0.0.1:0 RUST_LOG=${RUST_LOG:-info} \
  HARK_SPEECH__MODEL_DIR=$model HARK_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true
# The benchmark measures pages, not processing: its notes stay queued.
if [ -n "$bench" ]; then export HARK_JOBS__IN_PROCESS=false; fi
start_server || { echo "test result: FAILED. 0 passed; 1 failed (ui)"; exit 1; }
export HARK_URL=$base HARK_BIN=$hark

if [ -n "$bench" ]; then
  node tests/ui/bench.mjs
  exit
fi

shopt -s nullglob
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/ui/*.test.mjs)
if [ ${#tests[@]} = 0 ]; then
  echo "no browser tests in tests/ui" >&2; exit 1
fi
# One file at a time (they share the server); the spec report for people, a TAP copy to count.
tap=$data/ui.tap
set +e
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${tests[@]}"
status=$?
set -e
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
passed=${passed:-0} failed=${failed:-0}
# A run that failed without counting a failure (the runner itself broke) still counts as one.
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
if [ "$status" != 0 ] || [ "$failed" != 0 ]; then
  echo "--- the server's log (last 50 lines) ---" >&2
  tail -50 "$data/server.log" >&2
  if grep -q panicked "$data/server.log"; then
    echo "the server panicked:" >&2
    grep -A5 panicked "$data/server.log" >&2
  fi
  echo "test result: FAILED. $passed passed; $failed failed (ui)"
  exit 1
fi
echo "test result: ok. $passed passed; $failed failed (ui)"

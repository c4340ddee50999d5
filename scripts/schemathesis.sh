#!/usr/bin/env bash
# Checks that the server keeps the promises of its OpenAPI document: Schemathesis generates
# requests from /openapi.json (valid and invalid ones) and checks every answer against the
# document (status codes, content types, headers, bodies) and against HTTP itself.
#
# Installs a pinned Schemathesis from PyPI into a cache directory, builds and starts
# `hark serve` on a free port with a temporary data directory (SQLite), creates a user and a
# token, runs every check with a fixed seed, and exits non-zero on any failure.
#
# Environment: SCHEMATHESIS_EXAMPLES (test cases per operation and phase, default 50),
# SCHEMATHESIS_SEED (default 1), SCHEMATHESIS_REPORT (a directory for a JUnit and NDJSON
# report of the run; none when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/start-server.sh

version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-50}
seed=${SCHEMATHESIS_SEED:-1}

# Schemathesis, once per version, in a scratch directory moved into place when complete.
tool=${XDG_CACHE_HOME:-$HOME/.cache}/hark/schemathesis-$version
if [ ! -f "$tool/.complete" ]; then
  mkdir -p "$(dirname "$tool")"
  rm -rf "$tool.tmp$$"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$tool.tmp$$" "schemathesis==$version"
  touch "$tool.tmp$$/.complete"
  rm -rf "$tool"
  mv -T "$tool.tmp$$" "$tool"
fi
schemathesis() {
  PYTHONPATH="$tool${PYTHONPATH:+:$PYTHONPATH}" python3 -c 'from schemathesis.cli import schemathesis; schemathesis()' "$@"
}

cargo build --quiet --locked -p hark
hark=$PWD/target/debug/hark
# The speech model, so that transcription and correction answer for real.
bash scripts/speech-model.sh
model=$PWD/target/models/whisper-tiny-en

# The server, on a port of its choosing, with data that lives as long as this run.
data=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; fi
  rm -rf "$data"
}
trap cleanup EXIT
# Webhook targets the hooks make valid point at this machine.
export HARK_DATA_DIR=$data HARK_LISTEN=127.0.0.1:0 RUST_LOG=${RUST_LOG:-warn} \
  HARK_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true HARK_SPEECH__MODEL_DIR=$model
start_server || exit 1

email=schemathesis@example.com
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# An admin, so that deleting a user the run registered is allowed (to a user it is 404).
added=$("$hark" user add "$email" --password "$password" --role admin)
token=$("$hark" login --server "$base" --email "$email" --password "$password")
# The hooks keep this user alive and give positive test cases real audio and cursors.
export HARK_SCHEMATHESIS_USER_ID=$(sed -n 's/^added [^ ]* (\([0-9a-f-]*\),.*/\1/p' <<<"$added")
export HARK_SCHEMATHESIS_EMAIL=$email
export SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=$PWD/scripts

report=()
if [ -n "${SCHEMATHESIS_REPORT:-}" ]; then
  report=(--report junit,ndjson --report-dir "$SCHEMATHESIS_REPORT")
fi
set +e
# From the scratch directory: Schemathesis keeps a cache where it runs, which would make
# one run depend on the ones before.
(cd "$data" && schemathesis run "$base/openapi.json" \
  --checks all \
  --exclude-path-regex '^/api/v1/events' \
  --seed "$seed" \
  --max-examples "$examples" \
  --request-timeout 120 \
  --max-response-time 120 \
  --header "Authorization: Bearer $token" \
  --workers 1 \
  --suppress-health-check all \
  --no-color \
  "${report[@]}")
status=$?
set -e
if [ "$status" != 0 ] && grep -q panicked "$data/server.log"; then
  echo "the server panicked:" >&2
  grep -A5 panicked "$data/server.log" >&2
fi
exit "$status"

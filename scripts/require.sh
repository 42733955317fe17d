#!/usr/bin/env bash
# Make sure a system program is installed: `scripts/require.sh PROGRAM DEBIAN_PACKAGE [ALTERNATIVE...]`.
# Found (PROGRAM or an ALTERNATIVE on PATH): exit 0. Missing and we are root on Debian/Ubuntu:
# `apt-get install -y PACKAGE` (non-interactive). Missing otherwise: one line saying what to install,
# and exit 1, so a missing browser fails `make test` loudly instead of skipping its tests.
set -euo pipefail
prog=$1 pkg=$2
shift 2
for p in "$prog" "$@"; do
  command -v "$p" >/dev/null 2>&1 && exit 0
done
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "require: $prog is missing; installing the Debian package $pkg" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }
  for p in "$prog" "$@"; do
    command -v "$p" >/dev/null 2>&1 && exit 0
  done
  echo "require: installed $pkg but $prog is still not on PATH" >&2
  exit 1
fi
echo "require: $prog is missing: install it (Debian/Ubuntu: sudo apt-get install $pkg), then rerun" >&2
exit 1

#!/usr/bin/env bash
# Install Debian's Chromium for the report's browser tests, when it is missing.
#
# Does nothing if $SFSYNC_CHROMIUM or a chromium/chrome binary is already there.
# Installs with apt-get only when running as root (CI, the dev container); otherwise
# says what to run and exits 1 (the browser tests then skip locally, fail in CI).
set -euo pipefail

if [ -n "${SFSYNC_CHROMIUM:-}" ] && command -v "$SFSYNC_CHROMIUM" >/dev/null 2>&1; then
  exit 0
fi
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium.sh: no Chromium found and not root with apt-get;" \
       "install it (e.g. 'sudo apt-get install chromium') or set SFSYNC_CHROMIUM" >&2
  exit 1
fi

echo "install_chromium.sh: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Fonts so that text in screenshots renders; recommends (printing, desktop bits) are not needed.
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
command -v chromium >/dev/null

#!/usr/bin/env bash
# setup.sh: installs the Debian packages TRONE needs to build, test and run its demo.
# A fast no-op when everything is installed; otherwise apt-get (as root, or through sudo).
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config clang libuv1-dev libsodium-dev liblmdb-dev
          libcmocka-dev libinih-dev python3-dissononce iproute2 nftables)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg -s "$p" >/dev/null 2>&1; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup: missing packages (${missing[*]}) and not root, and no sudo: install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

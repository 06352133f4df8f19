#!/usr/bin/env bash
# setup.sh: installs the Debian packages TRONE needs to build, test and run its demo.
# A fast no-op when everything is installed; otherwise apt-get (as root, or through sudo).
# mosquitto and nats-server are the baselines of `trone bench events`, which starts its own
# instances on free loopback ports; the packaged mosquitto service is stopped after install.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config clang libuv1-dev libsodium-dev liblmdb-dev
          libcmocka-dev libinih-dev python3-dissononce iproute2 nftables
          mosquitto nats-server)

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

# The mosquitto package may start its system service on port 1883: nothing here uses it.
if printf '%s\n' "${missing[@]}" | grep -qx mosquitto; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    "${SUDO[@]}" systemctl stop mosquitto || true
    "${SUDO[@]}" systemctl disable mosquitto >/dev/null 2>&1 || true
  elif [ -r /run/mosquitto/mosquitto.pid ]; then
    "${SUDO[@]}" kill "$(cat /run/mosquitto/mosquitto.pid)" 2>/dev/null || true
  fi
fi

#!/usr/bin/env bash
# Install the `wrk` HTTP load generator when it is missing (Debian/Ubuntu package `wrk`).
# Idempotent: does nothing when `wrk` is already on PATH. Runs as root (CI) or through sudo.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    echo "install-wrk: wrk already installed at $(command -v wrk); nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-wrk: wrk is missing and apt-get is not available; install wrk by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-wrk: not root and no sudo; cannot install wrk" >&2
        exit 1
    fi
fi

echo "install-wrk: wrk missing; running apt-get update"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-wrk: running apt-get install -y wrk"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
echo "install-wrk: installed $(command -v wrk)"

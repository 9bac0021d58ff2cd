#!/usr/bin/env bash
# Installs the real reverse proxies the deployment tests run against (Debian packages):
# nginx and HAProxy. Idempotent; needs root (CI runs as root). The tests start their own
# instances on loopback ports with configs they write, so the packages' services are stopped.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-proxies: nginx, haproxy, curl and openssl already present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-proxies: need root to install ${missing[*]}" >&2
    exit 1
fi
echo "install-proxies: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d stops the packages from starting their default services during install.
# A policy the system already had is put back afterwards, byte for byte.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
    saved="$(mktemp)"
    cp -p "$policy" "$saved"
fi
trap 'if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi' EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod +x "$policy"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-proxies: done"

#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian 12 (root). Idempotent and quiet.
set -euo pipefail
pkgs=(libseccomp-dev pkg-config nftables iproute2 busybox-static tini docker-registry skopeo umoci
      runc docker.io apache2-utils tmux jq procps openssl curl)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-py for the API conformance tests (the Python docker SDK is the reference client).
# Debian 12's own python3 refuses pip installs into the system ("externally managed"): fall back to
# --break-system-packages there, after installing pip itself when it is missing.
if ! python3 -c 'import docker, pytest, websocket' 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  }
  py=(docker pytest websocket-client)
  python3 -m pip install -q "${py[@]}" >/dev/null 2>&1 ||
    python3 -m pip install -q --break-system-packages "${py[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo not found: install Rust (rustup) first" >&2; exit 1; }

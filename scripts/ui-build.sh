#!/usr/bin/env bash
# Builds the dashboard's browser assets (crates/berth-ui/web → web/dist) with npm + esbuild;
# cargo then embeds them into the berth binary (berth-ui's build.rs). Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/../crates/berth-ui/web"
command -v npm >/dev/null || { echo "ui-build: npm not found: install nodejs and npm (scripts/deps.sh does)" >&2; exit 1; }
# `npm ci` installs exactly package-lock.json; skipped when node_modules is newer than it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # No package install scripts (they would run as root here; esbuild needs none: its binary
  # comes as the optional @esbuild/<platform> package).
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
npm run --silent build
echo "ui-build: $(ls dist | tr '\n' ' ')"

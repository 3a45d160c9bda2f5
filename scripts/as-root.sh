#!/usr/bin/env bash
# Sourced by the top-level scripts after they cd to the repo root: re-runs the calling script as
# root when it is not root. sudo resets PATH, so the user's Rust toolchain (rustup lives in their
# home) is passed along; cargo's own cache stays root's. A root shell (a fresh Debian machine
# often has no sudo at all) runs on without sudo.
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$0: needs root: run it from a root shell, or install sudo" >&2; exit 1; }
  exec sudo env "PATH=$PATH" "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" \
    ${CI:+"CI=$CI"} ${BERTH_SHARED:+"BERTH_SHARED=$BERTH_SHARED"} \
    ${BERTH_TEST_IMAGES:+"BERTH_TEST_IMAGES=$BERTH_TEST_IMAGES"} \
    bash "$PWD/scripts/$(basename "$0")" "$@"
fi

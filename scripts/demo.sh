#!/usr/bin/env bash
# The main job: set up, build berth, load busybox, build a small Dockerfile, run it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/as-root.sh
shared=${BERTH_SHARED:-$(cd .. && pwd)/shared}
bash scripts/deps.sh
# The dashboard's browser assets, embedded into berth at compile time.
bash scripts/ui-build.sh
cargo build --release --bin berth
berth=target/release/berth
$berth load -i "$shared/images/busybox.oci.tar"
$berth images
$berth build -t berth-hello examples/hello
$berth run --rm berth-hello

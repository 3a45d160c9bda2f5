#!/usr/bin/env bash
# The whole test suite: lint, then every crate's unit and integration tests (root tests run for
# real; under CI=true a missing prerequisite fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/as-root.sh
bash scripts/deps.sh
export BERTH_TEST_IMAGES=${BERTH_TEST_IMAGES:-$(cd .. && pwd)/shared/images}
# One cold build of everything: incremental state would only cost time and ~14 GB of disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# The dashboard's browser assets, embedded into berth at compile time.
bash scripts/ui-build.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace --no-fail-fast -- --test-threads=2
# The benchmark harness's own logic (statistics, tables, target checks); benchmarks never gate CI.
python3 -m pytest -q bench/test_bench.py

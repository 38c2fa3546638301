#!/usr/bin/env bash
# Loom model checks of the state shared between tasks: the driver's event fan-out (shoal-core,
# feature `driver`) and the registry's lease accounting, cancellation and pool checkout
# (shoal-tokio). They need their own cfg flags, hence their own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
RUSTFLAGS="--cfg loom" cargo test -p shoal-core --features driver --release --lib loom
# shoal-tokio uses its own cfg name: `--cfg loom` would also switch tokio to its loom build,
# which has no networking, so quinn would not compile (see docs/rpc.md).
RUSTFLAGS="--cfg shoal_loom" cargo test -p shoal-tokio --release --lib loom

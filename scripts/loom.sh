#!/usr/bin/env bash
# Loom model checks of the state shared between tasks, all in shoal-net: the driver's event
# fan-out (driver/broadcast.rs) and the registry's lease accounting, cancellation and pool
# checkout (registry/state.rs). They need their own cfg flag, hence their own target directory.
# The flag is `shoal_loom`, not `loom`: the global `loom` cfg would also switch tokio (quinn's
# `sync` dependency) to its loom build (see docs/rpc.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
RUSTFLAGS="--cfg shoal_loom" cargo test -p shoal-net --release --lib loom

#!/usr/bin/env bash
# The project's test command (README): formatting, lints, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# API docs build with zero warnings (broken intra-doc links, bad code blocks) (issue 19).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
# The seeded swarm runs 1000 seeds (issue 18; ~95 s of CPU in the test profile on 2 cores,
# see docs/simulation.md); a caller's SIM_RUNS / SIM_SEED still wins.
export SIM_RUNS="${SIM_RUNS:-1000}"
cargo test --workspace -- --skip netns
# A real multi-host cluster in network namespaces (docs/netns.md): the release binaries, as
# root; without namespaces or nftables each scenario skips loudly (a failure when
# SHOAL_NETNS_REQUIRED=1, as in CI).
cargo test --release --workspace netns

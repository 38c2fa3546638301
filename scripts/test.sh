#!/usr/bin/env bash
# The project's test command (README): formatting, lints, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --skip netns
# A real multi-host cluster in network namespaces (docs/netns.md): the release binaries, as
# root; without namespaces or nftables each scenario skips loudly (a failure when
# SHOAL_NETNS_REQUIRED=1, as in CI).
cargo test --release --workspace netns

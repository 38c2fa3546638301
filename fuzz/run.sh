#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10) on the stable toolchain, with
# `-s none` (no sanitizer: safe Rust needs none, and sanitizers need nightly). One build is
# shared by all targets. Exits non-zero if any target crashes; prints per target the
# executions run and exec/s from libFuzzer's final stats line.
#
#   fuzz/run.sh [SECONDS]
#
# Crashes land in fuzz/artifacts/<target>/; reproduce with
#   cargo fuzz run -s none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

SECONDS_PER_TARGET="${1:-10}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked
fi

TARGETS=$(cargo fuzz list)
LOGDIR="${FUZZ_LOG_DIR:-target/fuzz-logs}"
mkdir -p "$LOGDIR"

start=$(date +%s)
cargo fuzz build -s none
echo "build: $(( $(date +%s) - start ))s"

failed=()
printf '%-20s %12s %10s %s\n' target executions exec/s result
for t in $TARGETS; do
    mkdir -p "corpus/$t"
    log="$LOGDIR/$t.log"
    if cargo fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$t")
    fi
    # Final stats line: "#<runs> DONE ... exec/s: <n> ..." (or the last pulse before a crash).
    line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$line")
    printf '%-20s %12s %10s %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
    if [ "$result" = CRASH ]; then
        grep -E 'panicked|SUMMARY|Test unit written' "$log" | head -n 5 | sed 's/^/    /'
    fi
done
echo "total: $(( $(date +%s) - start ))s"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]} (logs in fuzz/$LOGDIR)" >&2
    exit 1
fi

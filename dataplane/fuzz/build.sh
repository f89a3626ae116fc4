#!/usr/bin/env bash
# Builds every fuzz target of dataplane/fuzz (CI calls this).
#
# cargo-fuzz builds on the stable toolchain with `--sanitizer none` (the
# sanitizers need nightly's -Zsanitizer): the targets get libFuzzer's
# coverage instrumentation and panic checks, without ASan. When cargo-fuzz is
# missing it is installed from crates.io.
#
# Usage: dataplane/fuzz/build.sh check      compile the targets as plain binaries
#                                            (no cargo-fuzz, no instrumentation; reuses
#                                            the workspace's target/; what CI runs)
#        dataplane/fuzz/build.sh            build all targets with cargo-fuzz
#        dataplane/fuzz/build.sh run [SECS]  also run each target SECS seconds
#                                            (default 60) on a scratch corpus
#                                            grown from seeds/<target>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target_dir="${JSFU_FUZZ_TARGET_DIR:-$here/../../target-fuzz}"
if [[ "${1:-}" == check ]]; then
    # Plain binaries link libFuzzer's main too: given files, they replay them.
    CARGO_TARGET_DIR="$here/../../target" cargo build --manifest-path "$here/Cargo.toml"
    for t in stun rtp rtcp sdp dcep sctp; do
        "$here/../../target/debug/$t" "$here/seeds/$t"/* >/dev/null 2>&1 \
            || { echo "fuzz target $t fails on its seeds" >&2; exit 1; }
    done
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cd "$here"
cargo fuzz build --fuzz-dir . --sanitizer none --target-dir "$target_dir"
if [[ "${1:-}" == run ]]; then
    secs="${2:-60}"
    for t in $(cargo fuzz list --fuzz-dir .); do
        corpus="$target_dir/corpus/$t"
        mkdir -p "$corpus"
        cargo fuzz run --fuzz-dir . --sanitizer none --target-dir "$target_dir" "$t" "$corpus" \
            "$here/seeds/$t" -- -max_total_time="$secs" -artifact_prefix="$target_dir/crash-$t-"
    done
fi

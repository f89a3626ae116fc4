#!/usr/bin/env bash
# The test command: formatting, lints, then every unit and end-to-end test.
# End-to-end tests start the real jsfu binary (built here) and, when Debian's
# `janus` package is installed, the real Janus for side-by-side comparison.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace -- --test-threads=2

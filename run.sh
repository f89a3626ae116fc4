#!/usr/bin/env bash
# One command: install build dependencies (Debian), build jsfu in release
# mode, and run it. Arguments are passed to jsfu (default script:
# scripts/echotest.js; see ./target/release/jsfu --help).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for pkg in libclang-dev clang pkg-config libssl-dev gcc git curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
# janus.js and webrtc-adapter for the demo page served at http://127.0.0.1:8088/
if [ ! -d demos/node_modules ] && command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --prefix demos >/dev/null
fi
ulimit -l unlimited 2>/dev/null || true
cargo build --release --bin jsfu
exec ./target/release/jsfu "$@"

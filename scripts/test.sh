#!/usr/bin/env bash
# The whole test suite (README's second command; .ci/run calls exactly this).
# Installs what is missing, starts PostgreSQL and Mosquitto if they are down,
# then: rustfmt, clippy (-D warnings), and every test with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
export ANJU_TEST_PG_URL=${ANJU_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

#!/usr/bin/env bash
# The whole test suite (README's second command; .ci/run calls exactly this).
# Installs what is missing, starts PostgreSQL and Mosquitto if they are down,
# then: rustfmt, clippy (-D warnings), cargo-deny (licences, bans, sources)
# and every test with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
export ANJU_TEST_PG_URL=${ANJU_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Licences, bans and sources of every dependency (deny.toml). The advisory
# database cannot be fetched from here, so advisories are not checked.
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet
cargo deny --log-level error check licenses bans sources
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

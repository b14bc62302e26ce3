#!/usr/bin/env bash
# The whole test suite (README's second command; .ci/run calls exactly this).
# Installs what is missing, starts PostgreSQL and Mosquitto if they are down,
# then: rustfmt, clippy (-D warnings), cargo-deny (licences, bans, sources),
# every Rust test with nextest, and the console's browser tests.
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

# The operator console in a real browser: Debian's chromium driven by
# playwright-core (from the lockfile; never a browser download), against
# `anju demo` (the binary the Rust tests built). CJK fonts so the Chinese
# pages render.
console_pkgs=()
for p in chromium fonts-noto-cjk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || console_pkgs+=("$p")
done
if [ ${#console_pkgs[@]} -gt 0 ]; then
  echo "test: installing ${console_pkgs[*]} for the console tests" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${console_pkgs[@]}" >/dev/null
fi
(cd tests/console && npm ci --no-audit --no-fund --silent && node --test --test-concurrency=1 console.test.mjs)

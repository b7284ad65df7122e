#!/usr/bin/env bash
# The project's test command (the README's): installs what the tests need
# beyond the Rust toolchain (tests/install.sh), then runs every test, and the
# tests of the route and of bad input once more on the PostgreSQL backend.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install.sh
cargo test --workspace "$@"
# The route, the replays of the fixtures, the bad-input and the SHEP tests again, each stack
# on a throwaway PostgreSQL server (docs/scale-out.md).
EGOV_TEST_STORE=postgres cargo test -p egov-cli \
  --test route --test replay --test receivers --test envelopes --test raw_requests --test shep "$@"

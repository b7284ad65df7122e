#!/usr/bin/env bash
# The project's test command (the README's): installs what the tests need
# beyond the Rust toolchain (tests/install.sh), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install.sh
cargo test --workspace "$@"

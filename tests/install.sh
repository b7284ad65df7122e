#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain (the first step of
# tests/run.sh, the README's test command, and of .ci/run):
#
# - Python 3 with the packages of the second-language client
#   (tests/python/requirements.txt: grpcio, grpcio-tools, cryptography), from PyPI;
# - the buf CLI (`buf curl`, a third-party gRPC client the TLS test calls with
#   certificates; `buf lint` in CI), from the npm registry, into target/ci-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import grpc, grpc_tools, cryptography" 2>/dev/null; then
  echo "== installing the Python client's packages (tests/python/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/python/requirements.txt
fi

tools="target/ci-tools"
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  echo "== installing the buf CLI (npm: @bufbuild/buf) into $tools"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" @bufbuild/buf@1 >/dev/null
fi

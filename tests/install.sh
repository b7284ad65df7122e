#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain (the first step of
# tests/run.sh, the README's test command, and of .ci/run):
#
# - Python 3 with the packages of the second-language client
#   (tests/python/requirements.txt: grpcio, grpcio-tools, cryptography), from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import grpc, grpc_tools, cryptography" 2>/dev/null; then
  echo "== installing the Python client's packages (tests/python/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/python/requirements.txt
fi

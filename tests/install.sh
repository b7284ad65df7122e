#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain (the first step of
# tests/run.sh, the README's test command, and of .ci/run):
#
# - Python 3 with the packages of the second-language client
#   (tests/python/requirements.txt: grpcio, grpcio-tools, cryptography), from PyPI;
# - for the console's browser tests (tests/console.rs): Debian's chromium
#   (apt-get, which needs root: CI runs this as root) and playwright-core from
#   the npm registry into tests/browser/node_modules, as tests/browser/package-lock.json
#   pins it. No browser is downloaded by playwright: the tests drive /usr/bin/chromium.
# - the buf CLI (`buf curl`, a third-party gRPC client the TLS test calls with
#   certificates; `buf lint` in CI), from the npm registry, into target/ci-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import grpc, grpc_tools, cryptography" 2>/dev/null; then
  echo "== installing the Python client's packages (tests/python/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/python/requirements.txt
fi

missing_packages=()
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || missing_packages+=(npm)
[ -x /usr/bin/chromium ] || missing_packages+=(chromium)
if [ ${#missing_packages[@]} -gt 0 ]; then
  echo "== installing ${missing_packages[*]} (apt-get)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/install.sh: ${missing_packages[*]} missing; run it as root (or: sudo apt-get install -y ${missing_packages[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
fi

if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  echo "== installing playwright-core (tests/browser/package-lock.json)"
  npm ci --silent --no-audit --no-fund --prefix tests/browser >/dev/null
fi

tools="target/ci-tools"
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  echo "== installing the buf CLI (npm: @bufbuild/buf) into $tools"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" @bufbuild/buf@1 >/dev/null
fi

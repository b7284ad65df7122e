#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain (the first step of
# tests/run.sh, the README's test command, and of .ci/run):
#
# - Python 3 with the packages of the second-language client
#   (tests/python/requirements.txt: grpcio, grpcio-tools, cryptography), zeep, the
#   SOAP library that checks the SHEP WSDLs (tests/shep_wsdl.rs), and lxml, on which the
#   external regional ARM of tests/shep_python_arm.rs is built, from PyPI;
# - for the console's browser tests (tests/console.rs): Debian's chromium
#   (apt-get, which needs root: CI runs this as root) and playwright-core from
#   the npm registry into tests/browser/node_modules, as tests/browser/package-lock.json
#   pins it. No browser is downloaded by playwright: the tests drive /usr/bin/chromium.
# - the buf CLI (`buf curl`, a third-party gRPC client the TLS test calls with
#   certificates; `buf lint` in CI), from the npm registry, into target/ci-tools;
# - PostgreSQL's server programs (Debian's `postgresql`): the tests of the
#   PostgreSQL backend start throwaway servers of their own (no server is left running).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import grpc, grpc_tools, cryptography, zeep, lxml" 2>/dev/null; then
  echo "== installing the Python client's packages (tests/python/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/python/requirements.txt
fi

missing_packages=()
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || missing_packages+=(npm)
[ -x /usr/bin/chromium ] || missing_packages+=(chromium)
if [ ${#missing_packages[@]} -gt 0 ]; then
  echo "== installing ${missing_packages[*]} (Debian's packages, for the console's browser tests)"
  sudo=""
  if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing_packages[@]}" >/dev/null
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

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  echo "== installing PostgreSQL's server programs (Debian: postgresql)"
  sudo=""
  if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  # The package starts a cluster of its own; the tests do not use it.
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi

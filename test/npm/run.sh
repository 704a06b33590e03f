#!/usr/bin/env bash
# The npm package of clients/js in an app built with Vite and webpack, run in chromium against pushd:
# installs what is missing (Debian's chromium; vite, webpack and typescript from package-lock.json;
# playwright-core of test/browser, whose harness it uses), then runs node's test runner. Builds
# ./cmd/pushd itself (or uses $PUSHD_BIN).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d ../browser/node_modules/playwright-core ]; then
  (cd ../browser && npm ci --no-audit --no-fund)
fi
if [ ! -d node_modules/vite ] || [ ! -d node_modules/webpack ] || [ ! -d node_modules/typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
exec node --test --test-concurrency=1 --test-timeout=120000 "$@" npm.test.js

#!/usr/bin/env bash
# Real-browser tests of the client (clients/js/sse.js), the demo page and the admin page: installs what is missing (Debian's chromium, playwright-core
# from package-lock.json), then runs node's test runner. Builds ./cmd/pushd itself (or uses $PUSHD_BIN).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/ajv ] || [ ! -d node_modules/yaml ]; then
  npm ci --no-audit --no-fund
fi
exec node --test --test-concurrency=1 --test-timeout=120000 "$@" contract.test.js sse.test.js admin.test.js origin.test.js tls.test.js connect-error.test.js demo.test.js channels.test.js resume.test.js

#!/usr/bin/env bash
# Runs pushd's whole test suite on a fresh machine: installs what the tests
# need when it is missing (redis-server, nginx, chromium, node/npm,
# docker-compose, a JDK, python3, iproute2 and nftables from Debian; npm packages), makes sure the shared Redis on 127.0.0.1:6379
# runs, then runs go vet, the Go tests with -race and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v curl >/dev/null || missing+=(curl)                   # the README's quick start
command -v java >/dev/null || missing+=(default-jdk-headless)   # examples/java
command -v python3 >/dev/null || missing+=(python3)             # examples/python
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)   # simulated hosts (internal/netsim)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)                    # cutting simulated hosts apart
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
# Tests that need a real redis-server (or another installed part) fail instead of skipping.
export CI="${CI:-1}"

if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  echo "== starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== go test (without -race: the Nacos SDK races in its reconnect and discovery, so these run only here)"
go test -count=1 -timeout 5m -run 'TestNacosReRegistersAfterServerRestart|TestNacosReplaysRegistrationMadeWhileServerDown|TestConformance' ./pkg/transport/nacos/registry/
echo "== browser tests (chromium + playwright-core)"
test/browser/run.sh
echo "== npm package clients/js (Vite and webpack builds in chromium)"
test/npm/run.sh

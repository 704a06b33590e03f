// Package test holds pushd's end-to-end tests: real pushd processes built
// from ./cmd/pushd, talked to over HTTP like browsers and backends do, with
// private redis-server processes and nginx as the load balancer. The
// browser tests (chromium) live in test/browser, the load tool's budget
// runs in test/load.
package test

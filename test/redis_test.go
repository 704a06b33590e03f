package test

import (
	"testing"

	"github.com/pushd/pushd/internal/testredis"
)

// startRedis starts a private redis-server, with AOF (appendfsync always)
// when aof is set.
func startRedis(t testing.TB, aof bool) *testredis.Server {
	t.Helper()
	if aof {
		return testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	}
	return testredis.Start(t)
}

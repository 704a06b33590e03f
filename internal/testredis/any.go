package testredis

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Redis is what a test that can run on a stand-in uses of its Redis: a
// *Server or a miniredis.
type Redis interface {
	// Addr is host:port.
	Addr() string
	// URL is the redis:// URL of database 0.
	URL() string
	// Client returns a client, closed when the test ends.
	Client() *redis.Client
}

// StartAny returns a Redis for a test that needs only what miniredis
// serves too (keys, pub/sub, PUBSUB NUMSUB): a private redis-server when
// UseReal (scripts/test.sh, CI), a miniredis otherwise, so that the test
// also runs where redis-server is not installed. Both stop when the test
// ends.
func StartAny(tb testing.TB) Redis {
	tb.Helper()
	if UseReal() {
		return Start(tb)
	}
	return &mini{tb: tb, Miniredis: miniredis.RunT(tb)}
}

// mini is a miniredis standing in for redis-server.
type mini struct {
	tb testing.TB
	*miniredis.Miniredis
}

func (m *mini) URL() string { return "redis://" + m.Addr() + "/0" }

func (m *mini) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	m.tb.Cleanup(func() { _ = c.Close() })
	return c
}

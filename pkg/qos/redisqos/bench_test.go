package redisqos_test

import (
	"testing"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/qostest"
	"github.com/pushd/pushd/pkg/qos/redisqos"
)

func BenchmarkRedis(b *testing.B) {
	s := testredis.Start(b)
	c := s.Client()
	qostest.Benchmark(b, func(b *testing.B) qos.Repository {
		r, err := redisqos.New(redisqos.Config{Client: c, Prefix: uniquePrefix()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		return r
	})
}

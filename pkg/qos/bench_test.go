package qos_test

import (
	"testing"

	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/qostest"
)

func BenchmarkMemory(b *testing.B) {
	qostest.Benchmark(b, func(b *testing.B) qos.Repository {
		m, err := qos.NewMemory(qos.MemoryConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	})
}

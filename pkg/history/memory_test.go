package history_test

import (
	"testing"

	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/history/historytest"
)

func newMemory(tb testing.TB, cfg history.MemoryConfig) *history.Memory {
	tb.Helper()
	m, err := history.NewMemory(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestMemoryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T) history.Store { return newMemory(t, history.MemoryConfig{}) })
}

func BenchmarkMemory(b *testing.B) {
	historytest.Benchmark(b, func(b *testing.B) history.Store { return newMemory(b, history.MemoryConfig{}) })
}

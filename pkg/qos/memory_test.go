package qos_test

import (
	"testing"

	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/qostest"
)

func newMemory(t *testing.T) qos.Repository {
	t.Helper()
	m, err := qos.NewMemory(qos.MemoryConfig{MaxPerRecipient: qostest.MaxPerRecipient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMemoryConformance(t *testing.T) {
	qostest.Run(t, newMemory)
}

package redis

import (
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/pushd/pushd/pkg/hub/hubtest"
)

// TestConformanceMiniredis runs the hub.Transport suite on miniredis too,
// so it runs on a machine without redis-server (where TestConformance is
// skipped, or fails when CI is set). The transport's own tests that read
// INFO commandstats, CLIENT LIST or kill connections need the real server.
func TestConformanceMiniredis(t *testing.T) {
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		m := miniredis.RunT(t)
		prefix := testPrefix(t)
		c := hubtest.Cluster{Restart: func() {
			m.Close()
			if err := m.Restart(); err != nil {
				t.Fatalf("miniredis restart: %v", err)
			}
		}}
		for _, id := range nodeIDs {
			tr, err := New(Config{URL: "redis://" + m.Addr() + "/0", Prefix: prefix, NodeID: id, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() {
				if err := tr.Close(); err != nil {
					t.Errorf("Close %s: %v", id, err)
				}
			})
			c.Nodes = append(c.Nodes, hubtest.Node{Transport: tr})
		}
		return c
	})
}

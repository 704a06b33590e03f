package redis

import (
	"testing"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub/hubtest"
)

// TestConformance runs the hub.Transport suite on nodes sharing a private
// redis-server per cluster, which the suite may restart.
func TestConformance(t *testing.T) {
	testredis.Require(t, "TestConformanceMiniredis runs the suite on miniredis")
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		srv := testredis.Start(t)
		prefix := testPrefix(t)
		c := hubtest.Cluster{Restart: srv.Restart}
		for _, id := range nodeIDs {
			tr, err := New(Config{URL: srv.URL(), Prefix: prefix, NodeID: id, Logger: testLogger(t)})
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

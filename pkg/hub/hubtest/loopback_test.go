package hubtest_test

import (
	"testing"

	"github.com/pushd/pushd/pkg/hub/hubtest"
)

func TestLoopbackConformance(t *testing.T) {
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		var net hubtest.Loopback
		var c hubtest.Cluster
		for range nodeIDs {
			c.Nodes = append(c.Nodes, hubtest.Node{Transport: net.Transport()})
		}
		return c
	})
}

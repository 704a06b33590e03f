package nacos

import (
	"testing"

	"github.com/pushd/pushd/pkg/hub/hubtest"
)

// TestConformance runs the hub.Transport suite on nodes that find each
// other through one static peer list naming all of them; they talk over
// peer links.
func TestConformance(t *testing.T) { runConformance(t, false) }

// TestConformancePerRequestHTTP runs the suite with one HTTP request per
// call, the path to peers that serve no links.
func TestConformancePerRequestHTTP(t *testing.T) { runConformance(t, true) }

func runConformance(t *testing.T, perRequestHTTP bool) {
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		disc, err := NewStatic()
		if err != nil {
			t.Fatal(err)
		}
		var c hubtest.Cluster
		var peers []Peer
		for _, id := range nodeIDs {
			tr, err := New(Config{
				NodeID: id, Apps: apps, Discovery: disc, Secret: testSecret,
				Listen: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1", PerRequestHTTP: perRequestHTTP,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = tr.Close() })
			peers = append(peers, tr.Self())
			c.Nodes = append(c.Nodes, hubtest.Node{Transport: tr})
		}
		if err := disc.SetPeers(peers...); err != nil {
			t.Fatal(err)
		}
		return c
	})
}

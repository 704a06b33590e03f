package registry

import (
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub/hubtest"
	"github.com/pushd/pushd/pkg/transport/nacos"
	"github.com/pushd/pushd/pkg/transport/nacos/registry/nacostest"
)

// sdkStart serialises the creation of naming clients by the suite's
// parallel subtests: the SDK fills a package variable (util.LocalIP) on
// first use without synchronisation.
var sdkStart sync.Mutex

// newNacosSerial is newNacos, one client at a time.
func newNacosSerial(t *testing.T, srv *nacostest.Server) *Nacos {
	sdkStart.Lock()
	defer sdkStart.Unlock()
	return newNacos(t, srv)
}

// TestConformance runs the hub.Transport suite on nodes that register with
// and discover each other through the in-process Nacos server (one per
// cluster), each with a naming client of its own. The suite may restart
// that server only without -race: the SDK's reconnect has a data race of
// its own (see nacos_restart_test.go).
func TestConformance(t *testing.T) {
	hubtest.Run(t, func(t *testing.T, app string, nodeIDs []string) hubtest.Cluster {
		srv := startFakeNacos(t)
		var c hubtest.Cluster
		if !sdkReconnectRaces {
			c.Restart = func() { restartNacos(t, srv, app, len(nodeIDs)) }
		}
		for _, id := range nodeIDs {
			tr, err := nacos.New(nacos.Config{
				NodeID: id, Apps: []string{app}, Discovery: newNacosSerial(t, srv),
				Secret: "test-secret-0123456789abcdef", Listen: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1",
			})
			if err != nil {
				t.Fatalf("nacos.New: %v", err)
			}
			t.Cleanup(func() { _ = tr.Close() })
			c.Nodes = append(c.Nodes, hubtest.Node{Transport: tr})
		}
		return c
	})
}

// restartNacos restarts srv on its port with no state, as after a crash,
// and waits until the nodes' naming clients have registered them again.
func restartNacos(t *testing.T, srv *nacostest.Server, app string, nodes int) {
	t.Helper()
	addr := srv.Addr()
	srv.Close()
	again, err := nacostest.Start(addr)
	if err != nil {
		t.Fatalf("restart Nacos on %s: %v", addr, err)
	}
	t.Cleanup(again.Close)
	await.True(t, 15*time.Second, "registrations replayed", func() bool {
		return len(again.Instances("public", testGroup, "pushd-"+app)) == nodes
	})
}

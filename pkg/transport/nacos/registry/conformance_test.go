package registry

import (
	"context"
	"fmt"
	"strings"
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
// its own (see nacos_restart_test.go). Under -race it does not run at all:
// nacos-sdk-go v2.3.2 stores a pushed instance list without a lock
// (ServiceInfoHolder.ProcessService), so a push racing Subscribe's own
// answer can leave a node with the older list until the next change — a
// discovery race of the SDK that a loaded race build hits about once in
// ten runs. scripts/test.sh runs it in its step without -race.
func TestConformance(t *testing.T) {
	if sdkReconnectRaces {
		t.Skip("run without -race (scripts/test.sh's non-race step): the Nacos SDK's own races")
	}
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		srv := startFakeNacos(t)
		var c hubtest.Cluster
		if !sdkReconnectRaces {
			c.Restart = func() { restartNacos(t, srv, apps, len(nodeIDs)) }
		}
		var discs []*Nacos
		c.Describe = func() string { return describeNacos(srv, apps, nodeIDs, discs) }
		for _, id := range nodeIDs {
			disc := newNacosSerial(t, srv)
			discs = append(discs, disc)
			tr, err := nacos.New(nacos.Config{
				NodeID: id, Apps: apps, Discovery: disc,
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
// and waits until the nodes' naming clients have registered them again
// for every app.
func restartNacos(t *testing.T, srv *nacostest.Server, apps []string, nodes int) {
	t.Helper()
	addr := srv.Addr()
	srv.Close()
	again, err := nacostest.Start(addr)
	if err != nil {
		t.Fatalf("restart Nacos on %s: %v", addr, err)
	}
	t.Cleanup(again.Close)
	await.True(t, 15*time.Second, "registrations replayed", func() bool {
		for _, app := range apps {
			if len(again.Instances("public", testGroup, "pushd-"+app)) != nodes {
				return false
			}
		}
		return true
	})
}

// describeNacos tells, per app, the instances srv holds and the peers each
// node's discovery last got pushed.
func describeNacos(srv *nacostest.Server, apps, nodeIDs []string, discs []*Nacos) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d connections, %d pushes, %d acks", srv.Connections(), srv.Pushes(), srv.Acks())
	for _, app := range apps {
		fmt.Fprintf(&b, "; %s: Nacos holds", app)
		for _, in := range srv.Instances("public", testGroup, "pushd-"+app) {
			fmt.Fprintf(&b, " %s@%s:%d", in.Metadata[MetaNodeID], in.Ip, in.Port)
		}
		for i, d := range discs {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			peers, err := d.Peers(ctx, app)
			cancel()
			fmt.Fprintf(&b, "; %s sees %v (%v)", nodeIDs[i], peers, err)
		}
	}
	return b.String()
}

package registry

import (
	"context"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/transport/nacos"
)

// countHandler is a hub.Handler that pretends to hold that many matching
// connections.
type countHandler int

func (h countHandler) HandleDeliver(context.Context, string, hub.Target, hub.Event) int {
	return int(h)
}

func (h countHandler) HandleSurvey(context.Context, string, hub.Request) (hub.Reply, error) {
	return hub.Reply{Count: int(h)}, nil
}

// runTransport creates a transport on 127.0.0.1 with cfg and runs it with
// h until stop (or the end of the test) ends Run, which withdraws its
// registrations; it does not wait for readiness.
func runTransport(t *testing.T, cfg nacos.Config, h hub.Handler) (tr *nacos.Transport, stop func()) {
	t.Helper()
	cfg.Listen, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1"
	cfg.Secret = "test-secret-0123456789abcdef"
	tr, err := nacos.New(cfg)
	if err != nil {
		t.Fatalf("nacos.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, h) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		stop()
		_ = tr.Close()
	})
	return tr, stop
}

// waitReady waits until tr serves its peer API and its discovery is
// connected.
func waitReady(t *testing.T, tr *nacos.Transport) {
	t.Helper()
	await.True(t, 10*time.Second, "transport ready", func() bool { return tr.Ready(context.Background()) == nil })
}

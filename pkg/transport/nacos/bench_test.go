package nacos

import (
	"context"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
)

// BenchmarkDeliverThreePeers measures one signed Deliver fanned out to three
// in-process peers over loopback HTTP.
func BenchmarkDeliverThreePeers(b *testing.B) {
	nodes, _ := staticClusterB(b, 0, 1, 1, 1)
	ev := hub.Event{Name: "news", Data: `{"title":"hello","body":"a short message"}`}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n, err := nodes[0].tr.Deliver(ctx, "demo", hub.Target{All: true}, ev)
		if err != nil || n != 3 {
			b.Fatalf("Deliver = %d, %v", n, err)
		}
	}
}

// BenchmarkSignAndVerify measures hashing a 1 KiB body and computing one
// request MAC (what both sides do per request).
func BenchmarkSignAndVerify(b *testing.B) {
	s := newSigner(testSecret)
	body := make([]byte, 1024)
	for b.Loop() {
		mac := s.requestMAC("POST", PathDeliver, "n1", "n2", "1700000000000", "0123456789abcdef0123456789abcdef",
			int64(len(body)), signature.BodySHA256(body))
		if len(mac) != 32 {
			b.Fatal("short mac")
		}
	}
}

// quickHandler is a countingHandler with the hub's quick path, as a
// *hub.Hub serves small deliveries: on the link's reading goroutine.
type quickHandler struct{ *countingHandler }

func (h quickHandler) HandleDeliverQuick(app string, t hub.Target, ev hub.Event) (int, bool) {
	return h.HandleDeliver(context.Background(), app, t, ev), true
}

// BenchmarkDeliverOnePeerParallel measures concurrent Delivers to one
// peer that serves them on its quick path: the two-node cross-node send
// over a peer link, without the hub.
func BenchmarkDeliverOnePeerParallel(b *testing.B) {
	disc, _ := NewStatic()
	sender := startNode(b, Config{NodeID: "a", Discovery: disc}, &countingHandler{})
	holder := &countingHandler{count: 1}
	peer := startNodeWith(b, Config{NodeID: "b", Discovery: disc}, holder, quickHandler{holder})
	if err := disc.SetPeers(sender.tr.Self(), peer.tr.Self()); err != nil {
		b.Fatal(err)
	}
	ev := hub.Event{Name: "news", Data: `{"title":"hello","body":"a short message"}`}
	tgt := hub.Target{UserIDs: []string{"42"}}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if n, err := sender.tr.Deliver(context.Background(), "demo", tgt, ev); err != nil || n != 1 {
				b.Errorf("Deliver = %d, %v", n, err)
				return
			}
		}
	})
}

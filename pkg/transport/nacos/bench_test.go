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

package redis

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// benchNodes starts a private Redis and two nodes; b holds user "bench".
func benchNodes(b *testing.B) (from *node) {
	b.Helper()
	srv := startRedis(b)
	prefix := testPrefix(b)
	a := startNode(b, srv, prefix, "a", 0)
	other := startNode(b, srv, prefix, "b", 1)
	other.SetInterest(app, "u:bench", true)
	awaitSubscribers(b, srv.Client(), a.Transport, app, "u:bench", 1)
	return a
}

// BenchmarkDeliverToUserOnOtherNode measures one Deliver round trip: PUBLISH
// to the user's channel, the other node serves it and publishes its reply.
func BenchmarkDeliverToUserOnOtherNode(b *testing.B) {
	a := benchNodes(b)
	ctx := context.Background()
	target := hub.Target{UserIDs: []string{"bench"}}
	ev := hub.Event{Name: "tick", Data: `{"price":42.5,"symbol":"ACME"}`}
	b.ReportAllocs()
	for b.Loop() {
		n, err := a.Deliver(ctx, app, target, ev)
		if err != nil || n != 1 {
			b.Fatalf("Deliver: %d, %v", n, err)
		}
	}
}

// BenchmarkDeliverToUserOnOtherNodeParallel measures throughput with many
// concurrent senders.
func BenchmarkDeliverToUserOnOtherNodeParallel(b *testing.B) {
	a := benchNodes(b)
	ctx := context.Background()
	target := hub.Target{UserIDs: []string{"bench"}}
	ev := hub.Event{Name: "tick", Data: `{"price":42.5,"symbol":"ACME"}`}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n, err := a.Deliver(ctx, app, target, ev)
			if err != nil || n != 1 {
				b.Errorf("Deliver: %d, %v", n, err)
				return
			}
		}
	})
}

// BenchmarkWireCodec measures the JSON work of one round trip (request
// encoded and decoded, reply encoded and decoded), to compare with the
// round trip itself.
func BenchmarkWireCodec(b *testing.B) {
	ev := hub.Event{Name: "tick", Data: `{"price":42.5,"symbol":"ACME"}`}
	env := envelope{ID: "0123456789ab.1k3", Origin: "node-a", ReplyTo: "pushd:reply:node-a", App: app,
		Kind: kindDeliver, TimeoutMS: 2000, Target: hub.Target{UserIDs: []string{"bench"}}, Event: &ev}
	b.ReportAllocs()
	for b.Loop() {
		p, _ := json.Marshal(&env)
		var in envelope
		if err := json.Unmarshal(p, &in); err != nil {
			b.Fatal(err)
		}
		r, _ := json.Marshal(&replyEnvelope{ID: in.ID, Reply: hub.Reply{NodeID: "node-b", Count: 1}})
		var out replyEnvelope
		if err := json.Unmarshal(r, &out); err != nil {
			b.Fatal(err)
		}
	}
}

package redis

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/hub"
)

// benchNodes starts a private Redis and two nodes; b holds user "bench".
// At the end it reports the CPU time per operation of this process (both
// nodes) and of redis-server, which wall-clock time on a shared machine
// does not show.
func benchNodes(b *testing.B) (from *node) {
	b.Helper()
	srv := startRedis(b, "the benchmark reads redis-server's CPU time in INFO")
	prefix := testPrefix(b)
	a := startNode(b, srv, prefix, "a", 0)
	other := startNode(b, srv, prefix, "b", 1)
	other.SetInterest(app, "u:bench", true)
	awaitSubscribers(b, srv.Client(), a.Transport, app, "u:bench", 1)
	rdb := srv.Client()
	self0, redis0 := processCPU(b), redisCPU(b, rdb)
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-self0)/float64(b.N), "nodes-cpu-ns/op")
			b.ReportMetric(float64(redisCPU(b, rdb)-redis0)/float64(b.N), "redis-cpu-ns/op")
		}
	})
	b.ResetTimer()
	return a
}

// processCPU is the user and system CPU time of this process.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time redis-server reports (INFO cpu, every thread).
func redisCPU(tb testing.TB, c *goredis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatalf("INFO cpu: %v", err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("INFO cpu %q: %v", line, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
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

// BenchmarkWireCodec measures the encoding work of one round trip
// (request encoded and decoded, reply encoded and decoded) in the binary
// format and in the JSON of LegacyWire, to compare with the round trip
// itself.
func BenchmarkWireCodec(b *testing.B) {
	ev := hub.Event{Name: "tick", Data: `{"price":42.5,"symbol":"ACME"}`}
	env := envelope{ID: "0123456789ab.1k3", Origin: "node-a", ReplyTo: "pushd:reply:node-a", App: app,
		Kind: kindDeliver, TimeoutMS: 2000, Target: hub.Target{UserIDs: []string{"bench"}}, Event: &ev}
	for _, legacy := range []bool{false, true} {
		b.Run(map[bool]string{false: "binary", true: "json"}[legacy], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := env.encode(legacy)
				if err != nil {
					b.Fatal(err)
				}
				in, err := decodeEnvelope(string(p))
				if err != nil {
					b.Fatal(err)
				}
				rep := &replyEnvelope{ID: in.ID, Reply: hub.Reply{NodeID: "node-b", Count: 1}}
				var r []byte
				if legacy {
					r, _ = json.Marshal(rep)
				} else {
					r = appendReply(startReplies(nil, "node-b"), rep)
				}
				if err := decodeReplies(string(r), func(*replyEnvelope) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

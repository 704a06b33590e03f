package hub

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// BenchmarkPublishUserHistory measures Publish to one of 10 000 users
// without a connection, so that the figure is the send's own work: with
// "off" no stream keeps history, with "memory" every user's stream keeps
// it in a history.Memory (the demo's user_history), so the difference is
// the cost of the append.
func BenchmarkPublishUserHistory(b *testing.B) {
	const users = 10000
	targets := make([]Target, users)
	for i := range targets {
		targets[i] = Target{UserIDs: []string{"u" + strconv.Itoa(i)}}
	}
	for _, store := range []string{"off", "memory"} {
		b.Run(store, func(b *testing.B) {
			cfg := Config{Writers: -1, Heartbeat: -1}
			if store == "memory" {
				mem, err := history.NewMemory(history.MemoryConfig{})
				if err != nil {
					b.Fatal(err)
				}
				opts := history.Options{Size: 100, TTL: time.Hour}
				cfg.History, cfg.StreamHistory = mem, func(s string) (history.Options, bool) {
					return opts, strings.HasPrefix(s, StreamUserPrefix)
				}
			}
			h := newTestHub(b, cfg)
			ctx := context.Background()
			ev := Event{Name: "bench", Data: `{"seq":1,"sentAt":1764487000000000}`}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := h.Publish(ctx, targets[i%users], ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

package hub

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// topOnlyStore is a HistoryStore that holds nothing in the process, as
// the Redis store: Top answers a fresh epoch string per call, as one read
// from Redis is.
type topOnlyStore struct{}

func (topOnlyStore) Append(context.Context, string, string, history.Entry, history.Options) (history.Position, error) {
	return history.Position{}, nil
}

func (topOnlyStore) Since(context.Context, string, string, history.Position, int, history.Options) (history.Result, error) {
	return history.Result{}, nil
}

func (topOnlyStore) Top(context.Context, string, string, history.Options) (history.Position, error) {
	return history.Position{Offset: 12345, Epoch: strings.Clone("e0123456"[:history.EpochLen])}, nil
}

// BenchmarkResumableConnMemory measures the heap the hub holds per idle
// connection (no socket: the hub's own share) in 3 channels and its user
// stream, without history, with those 4 streams resumable on a store that
// keeps nothing in the process (as the Redis store), and on the memory
// store (whose streams, made by the connect's Top, count too). The
// connect's frames are taken as a writer takes them. Run with
// -benchtime=1x.
func BenchmarkResumableConnMemory(b *testing.B) {
	const n = 5000
	opts := func(string) (history.Options, bool) { return history.Options{Size: 100, TTL: time.Minute}, true }
	for _, v := range []string{"none", "top-only", "memory"} {
		b.Run("history="+v, func(b *testing.B) {
			var total float64
			for range b.N {
				cfg := Config{Writers: -1}
				switch v {
				case "top-only":
					cfg.History, cfg.StreamHistory = topOnlyStore{}, opts
				case "memory":
					store, err := history.NewMemory(history.MemoryConfig{})
					if err != nil {
						b.Fatal(err)
					}
					cfg.History, cfg.StreamHistory = store, opts
				}
				h := newTestHub(b, cfg)
				conns := make([]*Conn, 0, n)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range n {
					ch := func(k int) string { return "ch-" + strconv.Itoa((i+k)%(n/10)) }
					c := mustConnect(b, h, ConnectRequest{
						User: User{ID: "u" + strconv.Itoa(i)}, Channels: []string{ch(0), ch(1), ch(2)}})
					drainQueue(c) // written: an idle connection holds no frame
					conns = append(conns, c)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				total += float64(after.HeapAlloc) - float64(before.HeapAlloc)
				runtime.KeepAlive(conns)
			}
			b.ReportMetric(total/float64(b.N)/n, "heap-B/conn")
		})
	}
}

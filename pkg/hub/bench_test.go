package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks. Run them with
//
//	go test -run x -bench . -benchmem ./pkg/hub/
//
// BenchmarkFanOut measures the hub's own cost of one send to N local
// connections: the event is validated and encoded once, every connection
// gets the shared frame in its queue, and each connection's writer lays the
// frame out with its id counter and writes it. The writer is a
// discardOutlet, which does exactly what the pool workers do (take, lay
// out, write, record) but writes to io.Discard and runs inline in the
// sender's goroutine: no sockets, syscalls or goroutine hand-offs, so the
// figures are the CPU and allocations per delivery that the hub itself
// adds, free of kernel noise. BenchmarkFanOutSocket does the same over real
// hijacked loopback sockets written by the pool and drained by readers.

// discardOutlet is a writer that drains a connection's queue as soon as it
// is told, into io.Discard.
type discardOutlet struct {
	mu      sync.Mutex
	written int64
	wb      writeBuffers
}

func (o *discardOutlet) schedule(c *Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		frames, done := c.take()
		if len(frames) == 0 && !done {
			return
		}
		n, _ := o.wb.lay(c, frames).WriteTo(io.Discard)
		o.written += n
		c.written(frames)
		c.recycle(frames)
		if done {
			return
		}
	}
}

func BenchmarkFanOut(b *testing.B) {
	for _, conns := range []int{1, 1000, 10000} {
		b.Run("conns="+strconv.Itoa(conns), func(b *testing.B) {
			h := newTestHub(b, Config{Writers: -1})
			out := &discardOutlet{}
			for i := range conns {
				c := mustConnect(b, h, ConnectRequest{User: User{ID: "u" + strconv.Itoa(i%1000)}, Channels: []string{"ch"}})
				c.attach(out, nil)
			}
			ctx := context.Background()
			payload := map[string]any{"text": "a chat message of a typical length, sent to many browsers", "n": 42}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				n, err := h.SendAll(ctx, "chat", payload)
				if err != nil || n != conns {
					b.Fatalf("SendAll: %d %v", n, err)
				}
			}
			b.StopTimer()
			d := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(conns)
			b.ReportMetric(d, "ns/delivery")
			if h.LocalStats().Connections != conns {
				b.Fatal("connections lost")
			}
		})
	}
}

// BenchmarkFanOutSocket sends to N real HTTP/1.1 streams hijacked by the
// hub and written by its writer pool; a goroutine per client drains the
// socket. The sender waits every batch until every queue is written, so
// the figure is the end-to-end cost per delivery of the pool (syscalls
// included), not only of queueing.
func BenchmarkFanOutSocket(b *testing.B) {
	for _, conns := range []int{1, 100, 1000} {
		b.Run("conns="+strconv.Itoa(conns), func(b *testing.B) {
			h := newTestHub(b, Config{QueueSize: 1024, Heartbeat: -1})
			srv := httptest.NewServer(connectHandler(h))
			b.Cleanup(srv.Close)
			var received atomic.Int64
			clients := make([]net.Conn, 0, conns)
			b.Cleanup(func() {
				for _, nc := range clients {
					_ = nc.Close()
				}
			})
			for i := range conns {
				nc, err := dialStream(srv.Listener.Addr().String(), "/?userId=u"+strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, nc)
				go func() {
					buf := make([]byte, 32<<10)
					for {
						n, err := nc.Read(buf)
						received.Add(int64(n))
						if err != nil {
							return
						}
					}
				}()
			}
			checkFor(b, waitTimeout, func() error {
				if n := h.LocalStats().Connections; n != conns {
					return fmt.Errorf("%d of %d connected", n, conns)
				}
				return nil
			})
			var all []*Conn
			h.conns.each(func(c *Conn) { all = append(all, c) })
			idle := func() error {
				for _, c := range all {
					c.mu.Lock()
					busy := len(c.queue) > 0 || c.scheduled
					c.mu.Unlock()
					if busy {
						return errors.New("writes pending")
					}
				}
				return nil
			}
			ctx := context.Background()
			ev := Event{Name: "chat", Data: `{"text":"a chat message of a typical length, sent to many browsers","n":42}`}
			const batch = 64
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				n, err := h.Send(ctx, Target{All: true}, ev)
				if err != nil || n != conns {
					b.Fatalf("Send: %d %v", n, err)
				}
				if i%batch == batch-1 || i == b.N-1 {
					waitIdle(b, idle)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(conns), "ns/delivery")
			b.ReportMetric(float64(received.Load())/float64(b.N)/float64(conns), "B/delivery")
		})
	}
}

// waitIdle spins (yielding) until idle reports nil; a benchmark cannot
// afford checkFor's 5 ms naps.
func waitIdle(b *testing.B, idle func() error) {
	deadline := time.Now().Add(waitTimeout)
	for idle() != nil {
		if time.Now().After(deadline) {
			b.Fatal("writes did not finish")
		}
		runtime.Gosched()
	}
}

// dialStream opens a raw HTTP/1.1 SSE stream at path and reads until its
// connect-finish frame arrived, with no buffer kept per connection.
func dialStream(addr, path string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		nc.Close()
		return nil, err
	}
	var got []byte
	buf := make([]byte, 1024)
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	for !bytes.Contains(got, []byte("event:connect-finish")) || !bytes.Contains(got, []byte("}\n\n")) {
		n, err := nc.Read(buf)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("reading connect-finish: %w (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return nc, nil
}

// memFigures are the runtime's memory figures after two collections (the
// second empties sync.Pool victim caches).
type memFigures struct{ heap, stack, sys uint64 }

func readMem() memFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memFigures{heap: ms.HeapAlloc, stack: ms.StackInuse, sys: ms.Sys}
}

// BenchmarkIdleConnMemory measures what an idle SSE connection costs: it
// opens idleConns real HTTP/1.1 streams to an httptest server and reports
// the growth of the live heap, of goroutine stacks and of the memory
// obtained from the OS, divided by idleConns. The clients are raw sockets
// in the same process; path=tcp-only measures a plain TCP connection (both
// ends held, no HTTP, no hub) the same way, so the hub's and net/http's
// share is path minus tcp-only. Sys only grows, so it is meaningful on the
// first iteration; run with -benchtime=1x for one clean measurement.
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleConns = 2000
	for _, p := range []struct {
		name    string
		writers int
	}{{"hijack", 0}, {"direct", -1}, {"tcp-only", 0}} {
		b.Run("path="+p.name, func(b *testing.B) {
			var heap, stack, sys float64
			for range b.N {
				d := measureIdle(b, p.name == "tcp-only", p.writers, idleConns)
				heap += float64(d.heap)
				stack += float64(d.stack)
				sys += float64(d.sys)
			}
			per := float64(b.N) * idleConns
			b.ReportMetric(heap/per, "heap-B/conn")
			b.ReportMetric(stack/per, "stack-B/conn")
			b.ReportMetric(sys/per, "sys-B/conn")
		})
	}
}

func measureIdle(b *testing.B, tcpOnly bool, writers, n int) memFigures {
	b.Helper()
	var addr string
	var teardown func()
	var ready func() int
	if tcpOnly {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var held []net.Conn
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				// Answer like a stream would, so dialStream returns.
				_, _ = io.WriteString(nc, "HTTP/1.1 200 OK\r\n\r\nevent:connect-finish\ndata:{}\n\n")
				mu.Lock()
				held = append(held, nc)
				mu.Unlock()
			}
		}()
		addr = ln.Addr().String()
		ready = func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(held)
		}
		teardown = func() {
			_ = ln.Close()
			mu.Lock()
			for _, nc := range held {
				_ = nc.Close()
			}
			mu.Unlock()
		}
	} else {
		h, err := New(Config{App: "bench", NodeID: "n1", Writers: writers, Heartbeat: -1, Keepalive: -1})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(connectHandler(h))
		addr = srv.Listener.Addr().String()
		ready = func() int { return h.LocalStats().Connections }
		teardown = func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_ = h.Shutdown(ctx)
			srv.Close()
		}
	}
	clients := make([]net.Conn, 0, n)
	before := readMem()
	for i := range n {
		nc, err := dialStream(addr, "/?userId=u"+strconv.Itoa(i))
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		clients = append(clients, nc)
	}
	checkFor(b, waitTimeout, func() error {
		if got := ready(); got != n {
			return fmt.Errorf("%d of %d connections held", got, n)
		}
		return nil
	})
	after := readMem()
	for _, nc := range clients {
		_ = nc.Close()
	}
	teardown()
	return memFigures{
		heap:  after.heap - min(before.heap, after.heap),
		stack: after.stack - min(before.stack, after.stack),
		sys:   after.sys - min(before.sys, after.sys),
	}
}

// BenchmarkAckMaxIDs measures one Ack of MaxAckIDs ids, each id twice,
// by a local connection against the memory repository: the hub's linear
// dedupe and the store's work for 500 pending messages.
func BenchmarkAckMaxIDs(b *testing.B) {
	h := newTestHub(b, Config{Writers: -1, Heartbeat: -1, QueueSize: 1 << 12, Repository: newMemoryRepo(b)})
	c := mustConnect(b, h, ConnectRequest{User: User{ID: "u"}, CanAck: true})
	ctx := context.Background()
	ids := make([]string, MaxAckIDs)
	for range b.N {
		b.StopTimer()
		for i := range MaxAckIDs / 2 {
			res, err := h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "e", Data: "d"}, WithQoS(0))
			if err != nil {
				b.Fatal(err)
			}
			ids[2*i], ids[2*i+1] = res.ID, res.ID
		}
		drainQueue(c)
		b.StartTimer()
		if n, err := h.Ack(ctx, c.ID(), User{ID: "u"}, ids); err != nil || n != MaxAckIDs/2 {
			b.Fatalf("Ack: %d %v", n, err)
		}
	}
}

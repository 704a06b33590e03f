package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// Benchmarks. Run them with
//
//	go test -run x -bench . -benchmem ./pkg/api/
//
// BenchmarkSendToUser is the handler alone, for a user with no connection.
// BenchmarkSendConnected and BenchmarkSendBatch send to users holding one
// of 10 000 connections, hijacked by the hub as real streams are and
// written by its writer pool, but into sockets that discard what they get
// (no kernel, no loopback): the figures are pushd's own CPU per message,
// the pool's writes included. cpu-ns/msg is the process's CPU time
// (getrusage) over the messages, every goroutine and the GC included;
// ns/msg is wall time. BenchmarkSendBatchSocket is BenchmarkSendBatch
// over real loopback TCP sockets, written as pushd writes them (one
// non-blocking send per message, inline): the kernel's share included.
// BenchmarkSendHTTP sends over a real loopback connection through
// net/http, to show what the HTTP server adds.

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, so the benchmark counts the handler's own work.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkSendToUser measures one POST …/send to a user (who has no
// connection here: the figure is the API's decoding, validation, routing
// and answer, without a socket write). Run it with
//
//	go test -run x -bench SendToUser -benchmem ./pkg/api/
func BenchmarkSendToUser(b *testing.B) {
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = h.Shutdown(context.Background()) }()
	handler, err := New(Config{Apps: map[string]App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		b.Fatal(err)
	}
	const body = `{"to":{"userIds":["u42"]},"event":"bench","data":{"seq":1,"sentAt":1764487000000000}}`
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "/api/v1/apps/demo/send", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer k1")
		w := &discardWriter{header: http.Header{}}
		handler.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// sink counts the bench events written to the discarding sockets and
// closes done when want of them were.
type sink struct {
	frames atomic.Int64
	want   atomic.Int64
	done   chan struct{}
}

var benchHead = []byte("event:bench\n")

// discardConn is a hijacked socket that takes every write at once.
type discardConn struct{ s *sink }

func (c discardConn) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, benchHead) && c.s.frames.Add(1) == c.s.want.Load() {
		close(c.s.done)
	}
	return len(p), nil
}
func (discardConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// hijackWriter is the ResponseWriter of a stream request; the hub hijacks
// it and gets a discardConn.
type hijackWriter struct {
	discardWriter
	conn net.Conn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.conn, nil, nil }

// benchNode is a hub with conns connections of users u0…u<conns-1>, each
// streamed to a discardConn, and the API in front of it.
type benchNode struct {
	handler *Handler
	sink    *sink
	users   int
}

func newBenchNode(b *testing.B, conns int) *benchNode {
	b.Helper()
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Heartbeat: -1, QueueSize: 1024})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	handler, err := New(Config{Apps: map[string]App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		b.Fatal(err)
	}
	s := &sink{done: make(chan struct{})}
	stream := httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil)
	for i := range conns {
		c, err := h.Connect(context.Background(), hub.ConnectRequest{User: hub.User{ID: "u" + strconv.Itoa(i)}})
		if err != nil {
			b.Fatal(err)
		}
		h.ServeStream(&hijackWriter{discardWriter: discardWriter{header: http.Header{}}, conn: discardConn{s}}, stream, c)
	}
	if n := h.LocalStats().Connections; n != conns {
		b.Fatalf("%d of %d connections", n, conns)
	}
	return &benchNode{handler: handler, sink: s, users: conns}
}

// body is a send body to user u.
func sendBody(u, seq int) string {
	return `{"to":{"userIds":["u` + strconv.Itoa(u) + `"]},"event":"bench","data":{"seq":` + strconv.Itoa(seq) + `,"sentAt":1764487000000000}}`
}

// run posts bodies[i % len] b.N times, each holding perOp messages, and
// reports the figures per message once every message was written.
func (n *benchNode) run(b *testing.B, bodies []string, perOp int) {
	msgs := int64(b.N) * int64(perOp)
	n.sink.want.Store(msgs)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/apps/demo/send", nil)
	r.Header.Set("Authorization", "Bearer k1")
	w := &discardWriter{header: http.Header{}}
	body := strings.NewReader("")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		body.Reset(bodies[i%len(bodies)])
		r.Body, r.ContentLength = io.NopCloser(body), int64(body.Len())
		clear(w.header)
		n.handler.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	select {
	case <-n.sink.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("%d of %d messages written", n.sink.frames.Load(), msgs)
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(msgs), "cpu-ns/msg")
	}
}

// BenchmarkSendConnected makes single sends, each to a different user of
// 10 000 connections.
func BenchmarkSendConnected(b *testing.B) {
	n := newBenchNode(b, 10000)
	bodies := make([]string, n.users)
	for u := range bodies {
		bodies[u] = sendBody(u, u)
	}
	n.run(b, bodies, 1)
}

// BenchmarkSendBatch posts batches of 100 personal sends, each to a
// different user of 10 000 connections (a batch reaches 100 users; 100
// batches reach them all).
func BenchmarkSendBatch(b *testing.B) {
	const size = 100
	n := newBenchNode(b, 10000)
	bodies := make([]string, n.users/size)
	for j := range bodies {
		items := make([]string, size)
		for k := range items {
			items[k] = sendBody(j*size+k, k)
		}
		bodies[j] = "[" + strings.Join(items, ",") + "]"
	}
	n.run(b, bodies, size)
}

// socketConns is how many loopback connections BenchmarkSendBatchSocket
// holds: both ends are in this process, and 20 000 descriptors is a
// common limit.
const socketConns = 9000

// BenchmarkSendBatchSocket posts batches of 100 personal sends to users
// holding one of 9 000 real loopback TCP streams. The clients do not
// read while the benchmark runs (their socket buffers hold what they
// get); afterwards every stream is read to check that each message
// arrived.
func BenchmarkSendBatchSocket(b *testing.B) {
	const size = 100
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Heartbeat: -1, QueueSize: 1024})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	handler, err := New(Config{Apps: map[string]App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	clients := make([]net.Conn, socketConns)
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	stream := httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		nc, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c, err := h.Connect(context.Background(), hub.ConnectRequest{User: hub.User{ID: "u" + strconv.Itoa(i)}})
		if err != nil {
			b.Fatal(err)
		}
		h.ServeStream(&hijackWriter{discardWriter: discardWriter{header: http.Header{}}, conn: nc}, stream, c)
	}
	bodies := make([]string, socketConns/size)
	for j := range bodies {
		items := make([]string, size)
		for k := range items {
			items[k] = sendBody(j*size+k, k)
		}
		bodies[j] = "[" + strings.Join(items, ",") + "]"
	}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/apps/demo/send", nil)
	r.Header.Set("Authorization", "Bearer k1")
	w := &discardWriter{header: http.Header{}}
	body := strings.NewReader("")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		body.Reset(bodies[i%len(bodies)])
		r.Body, r.ContentLength = io.NopCloser(body), int64(body.Len())
		clear(w.header)
		handler.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	msgs := float64(b.N) * size
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/msg")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/msgs, "cpu-ns/msg")
	}
	// Zero loss: user u got one message per batch that reached it.
	buf := make([]byte, 64<<10)
	for u, c := range clients {
		want := b.N / len(bodies)
		if u/size < b.N%len(bodies) {
			want++
		}
		if got := countEvents(c, buf, want); got != want {
			b.Fatalf("user u%d got %d of %d messages", u, got, want)
		}
	}
}

// countEvents reads c until it has seen want bench events after the
// response head and connect-finish, or for at most 10 s.
func countEvents(c net.Conn, buf []byte, want int) int {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got int
	var tail []byte
	for got < want {
		n, err := c.Read(buf)
		chunk := append(tail, buf[:n]...)
		got += bytes.Count(chunk, benchHead)
		tail = append([]byte(nil), chunk[max(0, len(chunk)-len(benchHead)+1):]...)
		if err != nil {
			break
		}
	}
	return got
}

// BenchmarkSendHTTP makes single sends to a user without connection over
// one keep-alive loopback connection to a net/http server, the client
// writing prepared requests: cpu-ns/msg is the server's cost of a whole
// call plus a small client's.
func BenchmarkSendHTTP(b *testing.B) {
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	handler, err := New(Config{Apps: map[string]App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	b.Cleanup(srv.Close)
	body := sendBody(42, 1)
	req := []byte(fmt.Sprintf("POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: pushd\r\nAuthorization: Bearer k1\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	benchKeepAliveSends(b, srv.Listener.Addr().String(), req)
}

// benchKeepAliveSends writes req b.N times over one keep-alive connection
// to addr, reads each answer (which must be 200) and reports the process's
// CPU per call as cpu-ns/msg.
func benchKeepAliveSends(b *testing.B, addr string, req []byte) {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nc.Close() })
	br := bufio.NewReader(nc)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	}
}

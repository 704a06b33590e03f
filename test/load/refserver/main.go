package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	design := flag.String("design", "pool", "goroutine, pool or epoll")
	base := flag.String("base", "/sse/demo", "browser base path")
	flag.Parse()
	addr := os.Getenv("PUSHD_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	if *design == "epoll" {
		log.Fatal(serveFloor(addr, *base))
	}
	srv, err := newServer(*design, *base)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(addr, srv))
}

// queueLen bounds a connection's queued frames; a connection that falls
// further behind is closed.
const queueLen = 64

// conn is one SSE stream.
type conn struct {
	user string

	// goroutine design
	queue chan []byte

	// pool design
	nc        net.Conn
	mu        sync.Mutex
	pending   [][]byte
	scheduled bool
	closed    bool
}

// server holds the connections of one design.
type server struct {
	design string
	mux    *http.ServeMux
	nextID atomic.Int64

	mu    sync.RWMutex
	conns map[*conn]struct{}

	work chan *conn // pool design: connections with pending bytes
}

func newServer(design, base string) (*server, error) {
	s := &server{design: design, mux: http.NewServeMux(), conns: map[*conn]struct{}{}}
	switch design {
	case "goroutine":
	case "pool":
		s.work = make(chan *conn, 1<<16)
		for range 4 * runtime.GOMAXPROCS(0) {
			go s.writer()
		}
	default:
		return nil, fmt.Errorf("unknown design %q (goroutine or pool)", design)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("GET "+base+"/connect", s.connect)
	s.mux.HandleFunc("POST /api/v1/apps/{app}/send", s.send)
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *server) connect(w http.ResponseWriter, r *http.Request) {
	c := &conn{user: r.URL.Query().Get("userId")}
	id := strconv.FormatInt(s.nextID.Add(1), 10)
	finish := []byte("event:connect-finish\ndata:{\"connectionId\":\"" + id + "\"}\n\n")
	if s.design == "pool" {
		s.hijack(w, c, finish)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	c.queue = make(chan []byte, queueLen)
	s.add(c) // before connect-finish: a client that has read it gets every later send
	defer s.remove(c)
	if _, err := w.Write(finish); err != nil {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case frame, ok := <-c.queue:
			if !ok {
				return
			}
			if _, err := w.Write(frame); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// hijack takes the connection over; the writer pool writes the response
// head itself (no chunked encoding: the body ends when the connection
// does), then the frames.
func (s *server) hijack(w http.ResponseWriter, c *conn, finish []byte) {
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
	// Registered before the head is written, so a client that has read
	// connect-finish gets every later send; the pool writes the head first.
	c.nc = nc
	c.pending = [][]byte{append([]byte(head), finish...)}
	c.scheduled = true
	s.add(c)
	s.work <- c
	// A read returns when the client goes away.
	go func() {
		var b [1]byte
		_, _ = nc.Read(b[:])
		s.closePool(c)
	}()
}

func (s *server) add(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *server) closePool(c *conn) {
	c.mu.Lock()
	c.closed = true
	c.pending = nil
	c.mu.Unlock()
	_ = c.nc.Close()
	s.remove(c)
}

// sendRequest is the part of pushd's send body the reference understands.
type sendRequest struct {
	To struct {
		All     bool     `json:"all"`
		UserIDs []string `json:"userIds"`
	} `json:"to"`
	Event string `json:"event"`
	Data  string `json:"data"`
}

func (s *server) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
		return
	}
	frame := []byte("event:" + req.Event + "\ndata:" + req.Data + "\n\n")
	users := map[string]bool{}
	for _, u := range req.To.UserIDs {
		users[u] = true
	}
	delivered := 0
	s.mu.RLock()
	for c := range s.conns {
		if req.To.All || users[c.user] {
			if s.offer(c, frame) {
				delivered++
			}
		}
	}
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"delivered":%d}`, delivered)
}

// offer queues frame for c without blocking.
func (s *server) offer(c *conn, frame []byte) bool {
	if s.design == "goroutine" {
		select {
		case c.queue <- frame:
			return true
		default:
			return false
		}
	}
	c.mu.Lock()
	if c.closed || len(c.pending) >= queueLen {
		c.mu.Unlock()
		return false
	}
	c.pending = append(c.pending, frame)
	wake := !c.scheduled
	c.scheduled = true
	c.mu.Unlock()
	if wake {
		s.work <- c
	}
	return true
}

// writer is one goroutine of the pool design's writer pool.
func (s *server) writer() {
	var bufs net.Buffers
	for c := range s.work {
		c.mu.Lock()
		bufs = append(bufs[:0], c.pending...)
		c.pending = c.pending[:0]
		c.scheduled = false
		c.mu.Unlock()
		if len(bufs) == 0 {
			continue
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufs.WriteTo(c.nc); err != nil {
			s.closePool(c)
		}
	}
}

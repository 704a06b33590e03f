// The tests run the epoll design too, which needs Linux.

//go:build linux

package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
)

// TestDesigns connects two users to each design, broadcasts and sends to one
// user, and checks the answered counts and the frames each stream carries.
func TestDesigns(t *testing.T) {
	for _, design := range []string{"goroutine", "pool", "epoll"} {
		t.Run(design, func(t *testing.T) {
			addr := startDesign(t, design)
			url := "http://" + addr
			a := openStream(t, addr, "a")
			b := openStream(t, addr, "b")
			// Both are registered once their connect-finish is read.
			a.expect(t, "event:connect-finish")
			b.expect(t, "event:connect-finish")

			if got := send(t, url, `{"to":{"all":true},"event":"pb","data":"one"}`); got != `{"delivered":2}` {
				t.Fatalf("broadcast answered %s", got)
			}
			if got := send(t, url, `{"to":{"userIds":["b"]},"event":"pb","data":"two"}`); got != `{"delivered":1}` {
				t.Fatalf("send to b answered %s", got)
			}
			a.expect(t, "event:pb", "data:one")
			b.expect(t, "event:pb", "data:one")
			b.expect(t, "event:pb", "data:two")
		})
	}
	if _, err := newServer("other", "/sse/demo"); err == nil {
		t.Fatal("an unknown design was accepted")
	}
}

// startDesign serves design on a loopback port and returns its address.
func startDesign(t *testing.T, design string) string {
	t.Helper()
	if design == "epoll" {
		f, err := listenFloor("127.0.0.1:0", "/sse/demo")
		if err != nil {
			t.Fatal(err)
		}
		port, err := f.port()
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = f.serve() }() // runs until the test binary exits
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	s, err := newServer(design, "/sse/demo")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close) // runs after the streams' cleanups close them
	return ts.Listener.Addr().String()
}

// The floor reads requests itself: several in one segment, one split over
// several, tenants and multi-key targets (each stream once), a closed
// stream no longer counted.
func TestFloorParsing(t *testing.T) {
	addr := startDesign(t, "epoll")
	a := openStream(t, addr, "a")
	a.expect(t, "event:connect-finish")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"to":{"userIds":["a","x"],"tenantIds":[""]},"event":"pb","data":"d"}`
	req := "POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: x\r\ncontent-length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	// Two requests in one write, then one in two writes.
	if _, err := nc.Write([]byte(req + req + req[:20])); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write([]byte(req[20:] + "GET /nowhere HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	for i, want := range []string{`{"delivered":1}`, `{"delivered":1}`, `{"delivered":1}`, `{"error":"not found"}`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		var sb strings.Builder
		if _, err := bufio.NewReader(resp.Body).WriteTo(&sb); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if sb.String() != want {
			t.Fatalf("answer %d = %s, want %s", i, sb.String(), want)
		}
	}
	for range 3 {
		a.expect(t, "event:pb", "data:d")
	}
	a.nc.Close()
	url := "http://" + addr
	await.True(t, 10*time.Second, "closed stream forgotten", func() bool {
		return send(t, url, `{"to":{"all":true},"event":"pb","data":"x"}`) == `{"delivered":0}`
	})
}

type stream struct {
	nc net.Conn
	br *bufio.Reader
}

func openStream(t *testing.T, addr, user string) *stream {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("GET /sse/demo/connect?userId=" + user + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("connect: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &stream{nc: nc, br: bufio.NewReader(resp.Body)}
}

// expect reads the next frame and checks that it starts with lines.
func (s *stream) expect(t *testing.T, lines ...string) {
	t.Helper()
	var frame []string
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a frame: %v (so far %q)", err, frame)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		frame = append(frame, line)
	}
	if len(frame) < len(lines) || strings.Join(frame[:len(lines)], "\n") != strings.Join(lines, "\n") {
		t.Fatalf("frame %q, want it to start with %q", frame, lines)
	}
}

func send(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/apps/demo/send", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

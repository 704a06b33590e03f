package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDesigns connects two users to each design, broadcasts and sends to one
// user, and checks the answered counts and the frames each stream carries.
func TestDesigns(t *testing.T) {
	for _, design := range []string{"goroutine", "pool"} {
		t.Run(design, func(t *testing.T) {
			s, err := newServer(design, "/sse/demo")
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s)
			t.Cleanup(ts.Close) // runs after the streams' cleanups close them
			a := openStream(t, ts.Listener.Addr().String(), "a")
			b := openStream(t, ts.Listener.Addr().String(), "b")
			// Both are registered once their connect-finish is read.
			a.expect(t, "event:connect-finish")
			b.expect(t, "event:connect-finish")

			if got := send(t, ts.URL, `{"to":{"all":true},"event":"pb","data":"one"}`); got != `{"delivered":2}` {
				t.Fatalf("broadcast answered %s", got)
			}
			if got := send(t, ts.URL, `{"to":{"userIds":["b"]},"event":"pb","data":"two"}`); got != `{"delivered":1}` {
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

type stream struct {
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
	return &stream{br: bufio.NewReader(resp.Body)}
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

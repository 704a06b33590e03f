package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// answerTo writes raw on a new connection to addr and reads the first
// answer; ok is false when the connection ended without one.
func answerTo(t *testing.T, addr, raw string) (status int, ok bool) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, raw); err != nil {
		return 0, false
	}
	if cw, isTCP := nc.(*net.TCPConn); isTCP {
		_ = cw.CloseWrite() // the request is all there is
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return 0, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, true
}

// FuzzLeanRequest sends arbitrary bytes after the lean path's request-line
// prefix, the same bytes to net/http, and requires of the lean path what an
// attacker must not get around: no request is accepted (2xx) that net/http
// refuses — the API key is the handler's check on both — and every answer
// the lean path writes is a well-formed HTTP/1.1 answer; afterwards a plain
// send still succeeds (no panic, no wedged listener).
func FuzzLeanRequest(f *testing.F) {
	good := sendRequest("k1", `{"to":{"userIds":["u1"]},"event":"e","data":"x"}`)
	f.Add(strings.TrimPrefix(good, apiPrefix))
	f.Add(strings.TrimPrefix(sendRequest("bad", `{"to":{"all":true},"data":1}`), apiPrefix))
	f.Add(strings.TrimPrefix(sendRequest("k1", `[{"to":{"all":true},"data":1}]`, "Content-Type: application/json"), apiPrefix))
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer k1\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n{}")
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer k1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
	f.Add("demo/send HTTP/1.1\nHost: p\nAuthorization: Bearer k1\nContent-Length: 2\n\n{}")
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer k1\r\nContent-Length: -1\r\n\r\n")
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer k1 \r\nContent-Length: 2\r\n\r\n{}")
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: bearer k1\r\nContent-Length: 2\r\n\r\n{}")
	f.Add("demo/send HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer k1\x00\r\nContent-Length: 2\r\n\r\n{}")
	n := startLean(f, LeanConfig{ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}, Config{})
	f.Fuzz(func(t *testing.T, rest string) {
		raw := apiPrefix + rest
		lean, leanOK := answerTo(t, n.addr, raw)
		plain, plainOK := answerTo(t, n.plain, raw)
		if leanOK && lean/100 == 2 && !(plainOK && plain/100 == 2) {
			t.Fatalf("the lean path accepted %q (%d), net/http answered %d (answered: %v)", raw, lean, plain, plainOK)
		}
		if leanOK && (lean < 100 || lean > 599) {
			t.Fatalf("the lean path answered status %d to %q", lean, raw)
		}
		if status, ok := answerTo(t, n.addr, good); !ok || status != http.StatusOK {
			t.Fatalf("after %q a plain send got %d (answered: %v)", raw, status, ok)
		}
	})
}

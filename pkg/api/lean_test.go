package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// This file measures the alternative to net/http for API calls that
// issue 17 asks to weigh: a lean HTTP/1.1 loop that parses the request
// head itself and reuses one *http.Request, one header map and one
// answer buffer per connection, so the API's handler runs unchanged. It
// is a prototype for the benchmark only: it understands keep-alive
// requests with a Content-Length and nothing else (no chunked bodies,
// Expect, pipelining checks, limits on the head, timeouts or logs).
//
//	go test -run x -bench 'SendHTTP|SendLean' -benchmem ./pkg/api/

// leanWriter is the ResponseWriter of leanServe: the answer is gathered
// and written with one write when the handler returns.
type leanWriter struct {
	header http.Header
	status int
	body   []byte
	out    []byte
}

func (w *leanWriter) Header() http.Header { return w.header }
func (w *leanWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *leanWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// finish writes the answer to nc.
func (w *leanWriter) finish(nc net.Conn) error {
	w.WriteHeader(http.StatusOK)
	b := append(w.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	for k, vs := range w.header {
		for _, v := range vs {
			b = append(b, "\r\n"...)
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
		}
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, w.body...)
	w.out = b
	_, err := nc.Write(b)
	return err
}

// leanServe serves keep-alive HTTP/1.1 requests on nc until it fails.
func leanServe(h http.Handler, nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 4<<10)
	u := &url.URL{}
	r := (&http.Request{URL: u, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(context.Background())
	body := &io.LimitedReader{R: br}
	r.Body = io.NopCloser(body)
	w := &leanWriter{header: http.Header{}}
	auth, ctype := []string{""}, []string{""}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		method, rest, _ := bytes.Cut(line, []byte(" "))
		target, _, _ := bytes.Cut(rest, []byte(" "))
		if string(method) != r.Method {
			r.Method = string(method)
		}
		if string(target) != u.Path {
			u.Path = string(target)
		}
		clear(r.Header)
		length := int64(0)
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) == 0 {
				break
			}
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Authorization")):
				if string(value) != auth[0] {
					auth[0] = string(value)
				}
				r.Header["Authorization"] = auth
			case bytes.EqualFold(name, []byte("Content-Type")):
				if string(value) != ctype[0] {
					ctype[0] = string(value)
				}
				r.Header["Content-Type"] = ctype
			case bytes.EqualFold(name, []byte("Content-Length")):
				if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
					return
				}
			}
		}
		r.ContentLength, body.N = length, length
		clear(w.header)
		w.status, w.body = 0, w.body[:0]
		h.ServeHTTP(w, r)
		if _, err := io.Copy(io.Discard, body); err != nil {
			return
		}
		if w.finish(nc) != nil {
			return
		}
	}
}

// BenchmarkSendLean is BenchmarkSendHTTP with leanServe in place of
// net/http's server: the difference of their cpu-ns/msg is what
// net/http costs beyond a head parser and one write per call.
func BenchmarkSendLean(b *testing.B) {
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
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
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go leanServe(handler, nc)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nc.Close() })
	body := sendBody(42, 1)
	req := []byte(fmt.Sprintf("POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: pushd\r\nAuthorization: Bearer k1\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
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

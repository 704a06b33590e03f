package test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/pushd/internal/testcert"
)

// TestTLSAndHTTP2: with tls.cert_file/key_file pushd serves HTTPS and
// HTTP/2, so that a browser's streams — more than the six connections per
// host an HTTP/1.1 browser would open — and its other requests share one
// connection.
func TestTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testcert.Write(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var conns sync.Map // connection address → requests
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	cfgFile := filepath.Join(dir, "pushd.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`, certFile, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, url: "https://" + addr, addr: addr, args: []string{"--config", cfgFile},
		env: []string{"PUSHD_LISTEN=" + addr}, client: client}
	n.start()
	t.Cleanup(n.stop)

	trace := func(req *http.Request) *http.Request {
		return req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				v, _ := conns.LoadOrStore(fmt.Sprintf("%p", info.Conn), new(int))
				*v.(*int)++
			}}))
	}
	const tabs = 10
	streams := make([]*stream, tabs)
	for i := range streams {
		s := openStreamWithRequest(t, client, trace, fmt.Sprintf("%s/sse/demo/connect?userId=tab&clientId=c%d&listeners=bell", n.url, i))
		if s.resp.ProtoMajor != 2 {
			t.Fatalf("stream %d over %s, want HTTP/2", i, s.resp.Proto)
		}
		s.frame() // connect-finish
		streams[i] = s
	}
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/apps/demo/send",
		strings.NewReader(`{"to":{"userIds":["tab"]},"event":"bell","data":"ding"}`))
	req.Header.Set("Authorization", "Bearer demo-key")
	resp, err := client.Do(trace(req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("send: %d over %s", resp.StatusCode, resp.Proto)
	}
	for i, s := range streams {
		if f := s.frame(); field(f, "data") != "ding" {
			t.Errorf("tab %d got %q", i, f)
		}
	}
	count := 0
	conns.Range(func(_, _ any) bool { count++; return true })
	if count != 1 {
		t.Errorf("%d streams and a send used %d connections, want one", tabs, count)
	}
}

// openStreamWithRequest is openStreamWith with the request passed through
// wrap first (to trace it).
func openStreamWithRequest(t *testing.T, client *http.Client, wrap func(*http.Request) *http.Request, url string) *stream {
	t.Helper()
	s := openStreamWith(t, &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return client.Transport.RoundTrip(wrap(r))
	})}, url)
	return s
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

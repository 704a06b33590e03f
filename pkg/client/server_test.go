package client_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/web"
)

// pushd is an in-process pushd for the tests and examples: one app "hr"
// with API key "key", demo authentication (the connect URL names the
// user), every channel public (as in the embedded demo), its browser
// endpoints at /sse/hr/ and the real API handler.
type pushd struct {
	// URL is the server's address.
	URL     string
	hub     *hub.Hub
	repo    *qos.Memory
	srv     *httptest.Server
	streams []*stream
}

// startPushd starts a pushd, with a memory QoS store when withQoS is set;
// wrap, when not nil, wraps its handler (to fail calls on purpose).
func startPushd(withQoS bool, wrap func(http.Handler) http.Handler) (*pushd, error) {
	p := &pushd{}
	cfg := hub.Config{App: "hr", NodeID: "n1"}
	if withQoS {
		repo, err := qos.NewMemory(qos.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		p.repo, cfg.Repository = repo, repo
	}
	// Channels named "news…" keep history, for the History example.
	store, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		return nil, err
	}
	cfg.History = store
	cfg.StreamHistory = func(s string) (history.Options, bool) {
		return history.Options{Size: 100, TTL: time.Hour}, strings.HasPrefix(s, hub.StreamChannelPrefix+"news")
	}
	h, err := hub.New(cfg)
	if err != nil {
		return nil, err
	}
	p.hub = h
	policy, err := channels.New(channels.Config{Namespaces: []channels.Namespace{{Match: "*", Join: channels.Public}}})
	if err != nil {
		return nil, err
	}
	wh, err := web.New(web.Config{Hub: h, Path: "/sse/hr", Auth: auth.Demo{}, Channels: policy})
	if err != nil {
		return nil, err
	}
	ah, err := api.New(api.Config{Apps: map[string]api.App{"hr": {Hub: h, Keys: []string{"key"}}}})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/sse/hr/", wh)
	mux.Handle("/api/", ah)
	var handler http.Handler = mux
	if wrap != nil {
		handler = wrap(mux)
	}
	p.srv = httptest.NewServer(handler)
	p.URL = p.srv.URL
	return p, nil
}

// mustStart is startPushd for examples, which have no testing.T.
func mustStart() *pushd {
	p, err := startPushd(true, nil)
	if err != nil {
		panic(err)
	}
	return p
}

// Close ends the streams, the hub and the server.
func (p *pushd) Close() {
	for _, s := range p.streams {
		s.body.Close()
	}
	_ = p.hub.Shutdown(context.Background())
	p.srv.Close()
	if p.repo != nil {
		_ = p.repo.Close()
	}
}

// stream is one browser connection's lines.
type stream struct {
	body  io.Closer
	lines chan string
}

// connect opens a browser connection with the connect query (userId,
// tenantId, channel, listeners, clientId, …) and waits for connect-finish.
func (p *pushd) connect(query string) (*stream, error) {
	resp, err := http.Get(p.URL + "/sse/hr/connect?" + query)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("connect %s: %s", query, resp.Status)
	}
	s := &stream{body: resp.Body, lines: make(chan string, 64)}
	p.streams = append(p.streams, s)
	go func() {
		defer close(s.lines)
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			s.lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	return s, s.await("event:connect-finish")
}

// mustConnect is connect for examples.
func (p *pushd) mustConnect(query string) *stream {
	s, err := p.connect(query)
	if err != nil {
		panic(err)
	}
	return s
}

// await reads lines until want, for at most 5 s.
func (s *stream) await(want string) error {
	_, err := s.until(want)
	return err
}

// until reads lines until want, for at most 5 s, and returns those before
// it.
func (s *stream) until(want string) ([]string, error) {
	var seen []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return seen, fmt.Errorf("stream ended before %q", want)
			}
			if l == want {
				return seen, nil
			}
			seen = append(seen, l)
		case <-timeout:
			return seen, fmt.Errorf("no %q within 5s", want)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer follows the daemon's contract just far enough to check the
// tool's own accounting: it can drop, duplicate and misroute deliveries on
// purpose. The real daemon is exercised in pushbench_test.go.
type fakeServer struct {
	mu    sync.Mutex
	conns []*fakeConn
	next  int

	dropEvery     int64 // drop every n-th delivery
	dupEvery      int64 // write every n-th delivery twice
	misrouteEvery int64 // every n-th send also goes to a connection it does not address
	replayEvery   int64 // every n-th delivery is preceded by a ":resend" copy, as a replay racing the send
	deliveries    atomic.Int64
	sends         atomic.Int64
	remoteIPs     sync.Map // remote address → true
	dropped       atomic.Int64
	duplicated    atomic.Int64
	misrouted     atomic.Int64
}

type fakeConn struct {
	user, tenant string
	out          chan string
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/sse/demo/connect":
		f.connect(w, r)
	case r.URL.Path == "/api/v1/apps/demo/send":
		f.send(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) connect(w http.ResponseWriter, r *http.Request) {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		f.remoteIPs.Store(host, true)
	}
	c := &fakeConn{user: r.URL.Query().Get("userId"), tenant: r.URL.Query().Get("tenantId"), out: make(chan string, 4096)}
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.next++
	id := f.next
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "id:%d\nretry:5000\nevent:connect-finish\ndata:{\"connectionId\":\"%d\",\"serverTime\":1,\"reconnectTime\":5000,\"name\":\"demo\"}\n\n", id, id)
	w.(http.Flusher).Flush()
	n := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case frame := <-c.out:
			n++
			fmt.Fprintf(w, "event:pb\nid:%d\n%s\n", n, frame)
			w.(http.Flusher).Flush()
		}
	}
}

func (f *fakeServer) send(w http.ResponseWriter, r *http.Request) {
	var req struct {
		To struct {
			All       bool     `json:"all"`
			UserIDs   []string `json:"userIds"`
			TenantIDs []string `json:"tenantIds"`
		} `json:"to"`
		Data string `json:"data"`
	}
	if r.Header.Get("Authorization") != "Bearer demo-key" {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
		return
	}
	match := func(c *fakeConn) bool {
		if req.To.All {
			return true
		}
		for _, u := range req.To.UserIDs {
			if c.user == u {
				return true
			}
		}
		for _, t := range req.To.TenantIDs {
			if c.tenant == t {
				return true
			}
		}
		return false
	}
	frame := "data:" + req.Data + "\n"
	f.mu.Lock()
	conns := append([]*fakeConn(nil), f.conns...)
	f.mu.Unlock()
	sendNo := f.sends.Add(1)
	delivered := 0
	misroute := f.misrouteEvery > 0 && sendNo%f.misrouteEvery == 0
	for _, c := range conns {
		if !match(c) {
			if misroute {
				misroute = false
				f.misrouted.Add(1)
				c.out <- frame
			}
			continue
		}
		delivered++
		n := f.deliveries.Add(1)
		if f.dropEvery > 0 && n%f.dropEvery == 0 {
			f.dropped.Add(1)
			continue
		}
		if f.replayEvery > 0 && n%f.replayEvery == 0 {
			f.duplicated.Add(1)
			c.out <- ":resend\n" + frame
		}
		c.out <- frame
		if f.dupEvery > 0 && n%f.dupEvery == 0 {
			f.duplicated.Add(1)
			c.out <- frame
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"delivered":%d,"stored":false,"id":"m%d"}`, delivered, sendNo)
}

func fakeConfig(url string) Config {
	return Config{
		Nodes:      []string{url},
		Conns:      60,
		Users:      7,
		Tenants:    3,
		Messages:   40,
		Publishers: 3,
		Timeout:    10 * time.Second,
		Settle:     -1,
	}
}

func TestRunAgainstFakeServer(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rep, err := run(context.Background(), fakeConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Problems())
	}
	if rep.Connect.Connected != 60 || len(rep.Phases) != 3 {
		t.Fatalf("connected %d, phases %d", rep.Connect.Connected, len(rep.Phases))
	}
	// 60 connections: broadcast reaches all, users u0..u6 hold 9 or 8, tenants 20 each.
	wantExpected := map[string]int64{modeBroadcast: 40 * 60, modeUser: 0, modeTenant: 40 * 20}
	for i := range 40 {
		wantExpected[modeUser] += int64(len(countOf(60, 7, i%7)))
	}
	for _, p := range rep.Phases {
		if p.Expected != wantExpected[p.Mode] || p.Delivered != p.Expected || p.Sent != 40 || p.MessagesComplete != 40 || p.APIDelivered != p.Expected {
			t.Errorf("%s: %+v (want expected %d)", p.Mode, p, wantExpected[p.Mode])
		}
		if p.Latency.Count != p.Delivered {
			t.Errorf("%s: %d latency samples for %d deliveries", p.Mode, p.Latency.Count, p.Delivered)
		}
	}
}

func countOf(conns, mod, v int) []int {
	var out []int
	for i := range conns {
		if i%mod == v {
			out = append(out, i)
		}
	}
	return out
}

func TestRunDetectsFaults(t *testing.T) {
	f := &fakeServer{dropEvery: 97, dupEvery: 89, misrouteEvery: 7}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	cfg.Modes = []string{modeUser, modeTenant}
	cfg.Timeout = 2 * time.Second // the drain waits this long for the dropped ones
	var log strings.Builder
	cfg.Log = &log
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("faults not detected")
	}
	var lost, dup, mis int64
	for _, p := range rep.Phases {
		lost += p.Lost
		dup += p.Duplicated
		mis += p.Misrouted
		if !p.TimedOut || p.MessagesIncomplete == 0 {
			t.Errorf("%s: lost messages but timed_out=%v incomplete=%d", p.Mode, p.TimedOut, p.MessagesIncomplete)
		}
	}
	if lost != f.dropped.Load() || dup != f.duplicated.Load() || mis != f.misrouted.Load() {
		t.Fatalf("detected lost/dup/misrouted %d/%d/%d, injected %d/%d/%d",
			lost, dup, mis, f.dropped.Load(), f.duplicated.Load(), f.misrouted.Load())
	}
	if lost == 0 || dup == 0 || mis == 0 {
		t.Fatalf("the test injected nothing: %d/%d/%d", lost, dup, mis)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "result: FAILED") {
		t.Fatalf("table does not say FAILED:\n%s", table.String())
	}
}

func TestMainWritesTableAndJSON(t *testing.T) {
	srv := httptest.NewServer(&fakeServer{})
	defer srv.Close()
	out := t.TempDir() + "/r.json"
	var stdout, stderr strings.Builder
	code := mainWithArgs([]string{"-nodes", srv.URL, "-conns", "20", "-messages", "5", "-settle", "-1ns", "-json", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "result: OK") {
		t.Fatalf("table:\n%s", stdout.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Connect.Connected != 20 || len(rep.Phases) != 3 || rep.Phases[0].Delivered != 100 {
		t.Fatalf("json report %+v", rep)
	}
	if code := mainWithArgs([]string{"-conns", "5"}, &stdout, &stderr); code != 1 {
		t.Fatalf("no nodes: exit %d, want 1", code)
	}
}

func TestRunUsesSourceAddresses(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	cfg.Modes = []string{modeUser}
	cfg.SrcIPs = []string{"127.0.0.2", "127.0.0.3"}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("not OK: %v", rep.Problems())
	}
	var seen []string
	f.remoteIPs.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	slices.Sort(seen)
	// The publisher's own API calls come from 127.0.0.1.
	if !slices.Equal(seen, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}) && !slices.Equal(seen, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Fatalf("connections came from %v", seen)
	}
}

// Under QoS a duplicate that is or follows a ":resend" redelivery is allowed;
// without QoS it is not.
func TestRunAcceptsRedeliveryDuplicatesOnlyUnderQoS(t *testing.T) {
	for _, qos := range []bool{true, false} {
		f := &fakeServer{replayEvery: 13}
		srv := httptest.NewServer(f)
		cfg := fakeConfig(srv.URL)
		cfg.Modes = []string{modeBroadcast}
		cfg.QoS = qos
		rep, err := run(context.Background(), cfg)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Phases[0]
		if p.Duplicated != f.duplicated.Load() || p.DupResent != p.Duplicated || p.Duplicated == 0 || p.Lost != 0 {
			t.Fatalf("qos=%v: duplicated %d (resend %d), lost %d; injected %d", qos, p.Duplicated, p.DupResent, p.Lost, f.duplicated.Load())
		}
		if rep.OK() != qos {
			t.Fatalf("qos=%v: OK()=%v, problems %v", qos, rep.OK(), rep.Problems())
		}
	}
}

func TestRunDurationBoundsPublishing(t *testing.T) {
	srv := httptest.NewServer(&fakeServer{})
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	cfg.Modes = []string{modeUser}
	cfg.Messages = 0
	cfg.Duration = 300 * time.Millisecond
	cfg.Rate = 100
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Phases[0]
	// About 30 sends; the bound is loose because the machine may be busy.
	if !rep.OK() || p.Sent < 1 || p.Sent > 30 || p.Delivered != p.Expected {
		t.Fatalf("OK=%v sent %d delivered %d of %d: %v", rep.OK(), p.Sent, p.Delivered, p.Expected, rep.Problems())
	}
}

// A server that accepts connections but never answers: the connect phase
// ends at its timeout and the run reports that nothing could be measured.
func TestRunConnectPhaseIsBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	cfg := fakeConfig(srv.URL)
	cfg.Conns = 10
	cfg.Timeout = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := run(context.Background(), cfg)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no connection") {
			t.Fatalf("err %v, want no connection", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop by itself")
	}
}

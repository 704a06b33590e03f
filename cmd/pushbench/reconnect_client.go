package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// connectFirst opens every connection to node 1 (DialConcurrency at a
// time) and waits, at most Timeout, until each has its connect-finish or
// failed.
func (r *reconnectRun) connectFirst(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	done, err := startSettling(ctx, len(r.clients), r.cfg.DialConcurrency, &r.wg, func(i int, settled func()) {
		r.life(ctx, r.clients[i], settled)
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	<-done // each settles by ctx's deadline at the latest
	return nil
}

// life is one connection's goroutine: the stream on node 1 (settled is
// called once it is open or failed), then, after the kill, reconnects
// until the run closes.
func (r *reconnectRun) life(setupCtx context.Context, c *rcClient, settled func()) {
	var once sync.Once
	settle := func() { once.Do(settled) }
	defer settle()
	base, err := r.stream(setupCtx, c, 0, settle)
	// A connect node 1 refused (its own admission bound) comes back after
	// the Retry-After, within the setup's deadline.
	for refused := (*errRefused)(nil); errors.As(err, &refused); {
		sleepCtx(setupCtx, refused.retryAfter)
		if setupCtx.Err() != nil {
			break
		}
		base, err = r.stream(setupCtx, c, 0, settle)
	}
	if err != nil {
		r.note("node 1: " + err.Error())
		return
	}
	if !r.killed.Load() {
		if !r.closing.Load() {
			r.note("node 1: stream ended before the kill")
		}
		return
	}
	if r.cfg.ReconnectBase > 0 {
		base = r.cfg.ReconnectBase
	}
	// sse.js's _retry: d = min(max, base·2^attempt), wait U[d/2, d), no
	// sooner than a Retry-After.
	attempt := 0
	var minDelay time.Duration
	for !r.closing.Load() {
		d := min(maxReconnectDelay, base<<min(attempt, 16))
		wait := max(minDelay, d/2+rand.N(d/2+1))
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.closed:
			t.Stop()
			return
		}
		node := r.survivors[int(r.rr.Add(1))%len(r.survivors)]
		r.attempts.Add(1)
		_, err := r.stream(context.Background(), c, node, nil)
		var refused *errRefused
		switch {
		case r.closing.Load():
			return
		case errors.As(err, &refused):
			r.refused.Add(1)
			minDelay = refused.retryAfter
		case err != nil:
			r.failed.Add(1)
			r.note(fmt.Sprintf("node %d: %s", node+1, err))
			minDelay = 0
		default:
			r.note(fmt.Sprintf("node %d: stream ended", node+1))
			minDelay = 0
		}
	}
}

// errRefused is a connect answered 503.
type errRefused struct{ retryAfter time.Duration }

func (e *errRefused) Error() string { return fmt.Sprintf("503, retry after %v", e.retryAfter) }

// stream opens c's stream on node and reads it until it ends. opened, if
// not nil, is called once connect-finish arrived. It returns the
// reconnectTime of connect-finish and nil when a stream that had opened
// ended, else why it could not open.
func (r *reconnectRun) stream(setupCtx context.Context, c *rcClient, node int, opened func()) (time.Duration, error) {
	u, _ := url.Parse(r.cfg.Nodes[node])
	d := net.Dialer{Timeout: r.cfg.Timeout}
	if len(r.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.srcIPs[c.idx%len(r.srcIPs)]}
		d.Control = bindLate
	}
	nc, err := d.DialContext(setupCtx, "tcp", hostPort(u))
	if err != nil {
		return 0, errors.New("dial: " + shortErr(err))
	}
	c.nc.Store(&nc)
	defer nc.Close()
	if r.closing.Load() {
		return 0, errors.New("run is closing")
	}
	_ = nc.SetDeadline(time.Now().Add(r.cfg.Timeout))
	q := url.Values{"userId": {c.user}, "tenantId": {c.tenant}, "name": {c.user},
		"clientId": {"pb-" + r.runID + "-" + strconv.Itoa(c.idx)}, "ack": {"1"}}
	req := "GET " + r.cfg.Base + "/connect?" + q.Encode() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nUser-Agent: pushbench\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return 0, errors.New("write: " + shortErr(err))
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, errors.New("read response: " + shortErr(err))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return 0, &errRefused{retryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	p := newSSEParser(bufio.NewReaderSize(resp.Body, 4096), 0)
	var base time.Duration
	for {
		ev, err := p.Next()
		if err != nil {
			return 0, errors.New("read connect-finish: " + shortErr(err))
		}
		if ev.Name != "connect-finish" {
			continue
		}
		var cf struct {
			ReconnectTime int64 `json:"reconnectTime"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &cf); err != nil {
			return 0, fmt.Errorf("connect-finish %q: %w", ev.Data, err)
		}
		base = time.Duration(cf.ReconnectTime) * time.Millisecond
		break
	}
	_ = nc.SetDeadline(time.Time{})
	if base <= 0 {
		base = 5 * time.Second // sse.js's DEFAULT_RECONNECT_TIME
	}
	after := r.killed.Load()
	if after {
		now := time.Now().UnixNano()
		r.perNode[node].Add(1)
		r.back.Add(1)
		atomicMax(&r.lastBack, now)
		r.backLat.Record(time.Duration(now - r.killAt.Load()))
	} else {
		r.onFirst.Add(1)
	}
	if opened != nil {
		opened()
	}
	for {
		ev, err := p.Next()
		if err != nil {
			return base, nil
		}
		if ev.Name != r.cfg.Event {
			continue
		}
		if !after {
			r.live.Add(1)
			continue
		}
		r.account(c, ev)
	}
}

// account counts one backlog message on a stream opened after the kill.
func (r *reconnectRun) account(c *rcClient, ev sseEvent) {
	pl, ok := parsePayload(ev.Data)
	if !ok || pl.run != r.runID || pl.phase != reconnectPhase {
		r.note("stray message")
		return
	}
	if !keyMatches(pl.key, c.user, c.tenant) {
		r.misrouted.Add(1)
		return
	}
	bit := uint64(1) << (pl.seq % int64(r.cfg.Backlog))
	if c.bits&bit != 0 {
		r.dup.Add(1)
		return
	}
	c.bits |= bit
	r.replayed.Add(1)
	c.got++
	if c.got == r.cfg.Backlog {
		now := time.Now().UnixNano()
		r.complete.Add(1)
		atomicMax(&r.lastOK, now)
		r.completeLat.Record(time.Duration(now - r.killAt.Load()))
	}
}

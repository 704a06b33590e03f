package main

import (
	"bufio"
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
	"strings"
	"time"
)

// connectAll starts every subscriber's goroutine and waits, at most
// Timeout, until each has opened its first stream.
func (r *flapRun) connectAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	done, err := startSettling(ctx, len(r.subs), r.cfg.DialConcurrency, &r.wg, func(i int, settled func()) {
		r.life(r.subs[i], settled)
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("connect: %d of %d open after %v: %v", r.opens.Load(), len(r.subs), r.cfg.Timeout, r.errors)
	}
}

// life is a subscriber's goroutine: its first stream (opened is called
// once it is up), then, after every drop, a pause and a reconnect to a
// random node with its last event id, until the run closes.
func (r *flapRun) life(s *flapSub, opened func()) {
	first := true
	for !r.closing.Load() {
		node := s.idx % len(r.nodes)
		var cu *catchUp
		if !first {
			node = rand.N(len(r.nodes))
			cu = &catchUp{start: time.Now(), want: [2]int64{r.chanSent[s.channel].Load(), r.userSent[s.idx].Load()}}
		}
		up, err := r.stream(s, node, cu, opened)
		if up {
			first = false
		}
		if r.closing.Load() {
			return
		}
		pause := 500 * time.Millisecond
		var refused *errRefused
		switch {
		case s.dropped.Swap(false):
			r.drops.Add(1)
			d := r.cfg.Flap.Down
			pause = d*4/5 + rand.N(d*2/5+1)
		case errors.As(err, &refused):
			r.refused.Add(1)
			pause = max(refused.retryAfter, pause)
		case err != nil:
			r.otherEnds.Add(1)
			r.note(fmt.Sprintf("node %d: %s", node+1, err))
		default:
			r.otherEnds.Add(1)
			r.note(fmt.Sprintf("node %d: stream ended", node+1))
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-r.closed:
			t.Stop()
			return
		}
	}
}

// stream opens s's stream on node (with Last-Event-ID when s has one)
// and reads it until it ends. It reports whether the stream opened; err
// says why it ended when the tool did not drop it.
func (r *flapRun) stream(s *flapSub, node int, cu *catchUp, opened func()) (bool, error) {
	u, _ := url.Parse(r.nodes[node])
	d := net.Dialer{Timeout: r.cfg.Timeout}
	if len(r.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.srcIPs[s.idx%len(r.srcIPs)]}
	}
	nc, err := d.Dial("tcp", hostPort(u))
	if err != nil {
		return false, errors.New("dial: " + shortErr(err))
	}
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	defer s.release(nc)
	if r.closing.Load() {
		return false, errors.New("run is closing")
	}
	_ = nc.SetDeadline(time.Now().Add(r.cfg.Timeout))
	q := url.Values{"userId": {s.user}, "tenantId": {"t0"}, "name": {s.user},
		"clientId": {"pb-" + r.runID + "-" + strconv.Itoa(s.idx)}, "channel": {r.channelName(s.channel)}}
	req := "GET " + r.cfg.Base + "/connect?" + q.Encode() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nUser-Agent: pushbench\r\n"
	if s.lastID != "" {
		req += "Last-Event-ID: " + s.lastID + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return false, errors.New("write: " + shortErr(err))
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, errors.New("read response: " + shortErr(err))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return false, &errRefused{retryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	p := newSSEParser(bufio.NewReaderSize(resp.Body, 4096), 0)
	// What an EventSource would send next time: the id as of the last
	// complete block, when this stream gave one.
	defer func() {
		if id := p.LastEventID(); id != "" {
			s.lastID = id
		}
	}()
	for {
		ev, err := p.Next()
		if err != nil {
			return false, errors.New("read connect-finish: " + shortErr(err))
		}
		if ev.Name != "connect-finish" {
			continue
		}
		var cf struct {
			Resumed *bool `json:"resumed"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &cf); err != nil {
			return false, fmt.Errorf("connect-finish %q: %w", ev.Data, err)
		}
		switch {
		case cf.Resumed == nil:
		case *cf.Resumed:
			r.resumedTrue.Add(1)
		default:
			r.resumedFalse.Add(1)
		}
		break
	}
	_ = nc.SetDeadline(time.Time{})
	r.connected.Add(1)
	defer r.connected.Add(-1)
	r.opens.Add(1)
	if cu != nil {
		r.reconnects.Add(1)
		r.connectLat.Record(time.Since(cu.start))
		r.checkCaughtUp(s, cu)
		defer func() {
			if !cu.done {
				r.interrupted.Add(1)
			}
		}()
	}
	opened()
	if r.flapping.Load() && !r.final.Load() {
		up := r.cfg.Flap.Up
		s.arm(nc, up/2+rand.N(up+1))
	}
	for {
		ev, err := p.Next()
		if err != nil {
			if s.dropped.Load() || r.closing.Load() {
				return true, nil
			}
			return true, errors.New("stream: " + shortErr(err))
		}
		switch ev.Name {
		case r.cfg.Event:
			r.account(s, ev, cu)
		case "sse-gap":
			r.gaps.Add(1)
		}
	}
}

// account counts one message received by s.
func (r *flapRun) account(s *flapSub, ev sseEvent, cu *catchUp) {
	pl, ok := parsePayload(ev.Data)
	if !ok || pl.run != r.runID {
		r.stray.Add(1)
		return
	}
	var k int
	switch pl.key {
	case "c:" + r.channelName(s.channel):
		k = 0
	case "u:" + s.user:
		k = 1
	default:
		r.misrouted.Add(1)
		return
	}
	st := &s.recv[k]
	w := int(pl.seq >> 6)
	st.bits = growBits(st.bits, w)
	bit := uint64(1) << (pl.seq & 63)
	if st.bits[w]&bit != 0 {
		r.dup.Add(1)
		when := "after the catch-up"
		switch {
		case cu == nil:
			when = "on a first stream"
		case !cu.done:
			when = "during the catch-up"
		}
		r.note(fmt.Sprintf("duplicate %s message %s (%d behind the newest received)", [2]string{"channel", "user"}[k], when, st.max-pl.seq))
		return
	}
	st.bits[w] |= bit
	s.unique.Add(1)
	r.totalUnique.Add(1)
	atomicMax(&r.lastDelivery, time.Now().UnixNano())
	if pl.seq < st.max {
		r.order.Add(1)
	}
	st.max = max(st.max, pl.seq)
	for st.water < int64(len(st.bits))*64 && st.bits[st.water>>6]&(1<<(st.water&63)) != 0 {
		st.water++
	}
	if cu != nil {
		r.checkCaughtUp(s, cu)
	}
}

// checkCaughtUp records the catch-up time of cu once s has everything it
// waits for.
func (r *flapRun) checkCaughtUp(s *flapSub, cu *catchUp) {
	if cu.done || s.recv[0].water < cu.want[0] || s.recv[1].water < cu.want[1] {
		return
	}
	cu.done = true
	r.catchLat.Record(time.Since(cu.start))
}

// arm schedules the abrupt drop of s's connection nc after d, unless
// one is scheduled.
func (s *flapSub) arm(nc net.Conn, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nc || s.timer != nil {
		return
	}
	s.timer = time.AfterFunc(d, func() { s.drop(nc) })
}

// drop closes nc, if it is still s's connection, with a reset: the
// client vanishes as on a network failure, without a FIN handshake.
func (s *flapSub) drop(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nc {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	s.dropped.Store(true)
	_ = nc.Close()
}

// release forgets nc (its stream ended) and its scheduled drop.
func (s *flapSub) release(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = nc.Close()
	if s.nc == nc {
		s.nc = nil
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
}

// startFlapping schedules every open connection's first drop, spread
// over the first Up.
func (r *flapRun) startFlapping() {
	r.flapping.Store(true)
	up := r.cfg.Flap.Up
	for _, s := range r.subs {
		s.mu.Lock()
		nc := s.nc
		s.mu.Unlock()
		if nc != nil {
			s.arm(nc, rand.N(up+1))
		}
	}
}

// stopFlapping cancels the drops not yet made; dropped subscribers still
// come back after their pause.
func (r *flapRun) stopFlapping() {
	r.final.Store(true)
	for _, s := range r.subs {
		s.mu.Lock()
		if s.timer != nil && s.timer.Stop() {
			s.timer = nil
		}
		s.mu.Unlock()
	}
}

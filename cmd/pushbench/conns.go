package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client states.
const (
	statePending int32 = iota
	stateConnected
	stateFailed
	stateGone // was connected, the stream ended
)

// client is one SSE connection. The fields after the marker are owned by the
// connection's reader goroutine.
type client struct {
	idx      int
	node     int
	user     string
	tenant   string
	channels []string // joined at connect

	state atomic.Int32
	id    string // connection id; written before state becomes connected
	mu    sync.Mutex
	nc    net.Conn

	// owned by the reader goroutine
	seenPhase int
	seen      []uint64 // sequence numbers received in seenPhase
	resends   []uint64 // those of them that arrived marked ":resend"
}

func (c *client) setConn(nc net.Conn) {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
}

func (c *client) close() {
	c.mu.Lock()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.mu.Unlock()
}

// connectRequest renders the GET request of connection c.
func (b *bench) connectRequest(c *client) []byte {
	u, _ := url.Parse(b.cfg.Nodes[c.node])
	q := url.Values{}
	q.Set("userId", c.user)
	q.Set("tenantId", c.tenant)
	q.Set("name", c.user)
	q.Set("clientId", "pb-"+b.runID+"-"+strconv.Itoa(c.idx))
	if b.cfg.Ack {
		q.Set("ack", "1")
	}
	if len(c.channels) > 0 {
		q.Set("channels", strings.Join(c.channels, ","))
	}
	var sb strings.Builder
	sb.WriteString("GET ")
	sb.WriteString(b.cfg.Base)
	sb.WriteString("/connect?")
	sb.WriteString(q.Encode())
	sb.WriteString(" HTTP/1.1\r\nHost: ")
	sb.WriteString(u.Host)
	sb.WriteString("\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: pushbench\r\n\r\n")
	return []byte(sb.String())
}

// connectRange opens connections [from, to) with at most DialConcurrency
// setups in flight and waits until each is connected or failed, or until
// Timeout. It returns the time from the first dial to the last
// connect-finish.
func (b *bench) connectRange(ctx context.Context, from, to int) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	start := time.Now()
	var last atomic.Int64
	var settled sync.WaitGroup
	sem := make(chan struct{}, b.cfg.DialConcurrency)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := from; i < to; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for j := i; j < to; j++ {
					b.clients[j].state.Store(stateFailed)
				}
				b.failed.Add(int64(to - i))
				b.noteConnError("not started: " + ctx.Err().Error())
				return
			}
			c := b.clients[i]
			settled.Add(1)
			b.readers.Add(1)
			go func() {
				defer b.readers.Done()
				b.serve(ctx, c, func() {
					atomicMax(&last, time.Now().UnixNano())
					<-sem
					settled.Done()
				})
			}()
		}
	}()
	<-done
	waited := make(chan struct{})
	go func() { settled.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		// serve's own deadline makes every pending setup fail shortly.
		<-waited
	}
	if l := last.Load(); l > 0 {
		return time.Duration(l - start.UnixNano())
	}
	return time.Since(start)
}

// serve dials c, reads the response and connect-finish (calling settled
// once, on success or failure), then reads events until the stream ends.
func (b *bench) serve(setupCtx context.Context, c *client, settled func()) {
	once := sync.Once{}
	settle := func() { once.Do(settled) }
	defer settle()
	t0 := time.Now()
	fail := func(what string, err error) {
		c.state.Store(stateFailed)
		b.failed.Add(1)
		b.noteConnError(what + ": " + shortErr(err))
	}
	u, _ := url.Parse(b.cfg.Nodes[c.node])
	d := net.Dialer{}
	if len(b.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: b.srcIPs[c.idx%len(b.srcIPs)]}
	}
	nc, err := d.DialContext(setupCtx, "tcp", hostPort(u))
	if err != nil {
		fail("dial", err)
		return
	}
	c.setConn(nc)
	defer c.close()
	if dl, ok := setupCtx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if b.closing.Load() {
		fail("setup", errors.New("run is closing"))
		return
	}
	if _, err := nc.Write(b.connectRequest(c)); err != nil {
		fail("write request", err)
		return
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		fail("read response", err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		fail("connect", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body))))
		return
	}
	p := newSSEParser(bufio.NewReaderSize(resp.Body, 4096), 0)
	for {
		ev, err := p.Next()
		if err != nil {
			fail("read connect-finish", err)
			return
		}
		if ev.Name != "connect-finish" {
			b.otherEvents.Add(1)
			continue
		}
		var cf struct {
			ConnectionID json.RawMessage `json:"connectionId"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &cf); err != nil || len(cf.ConnectionID) == 0 {
			fail("connect-finish", fmt.Errorf("bad data %q", ev.Data))
			return
		}
		c.id = strings.Trim(string(cf.ConnectionID), `"`)
		break
	}
	_ = nc.SetDeadline(time.Time{})
	c.state.Store(stateConnected)
	b.connected.Add(1)
	b.connectLatency.Record(time.Since(t0))
	settle()

	closedByServer := false
	for {
		ev, err := p.Next()
		if err != nil {
			c.state.Store(stateGone)
			if b.closing.Load() {
				return
			}
			if closedByServer {
				b.closedByServer.Add(1)
				return
			}
			b.dropped.Add(1)
			b.noteConnError("stream ended: " + shortErr(err))
			return
		}
		switch ev.Name {
		case b.cfg.Event:
			b.deliver(c, ev)
		case "connect-close":
			closedByServer = true
			b.noteConnError("connect-close: " + ev.Data)
		default:
			b.otherEvents.Add(1)
		}
	}
}

// deliver accounts one received message.
func (b *bench) deliver(c *client, ev sseEvent) {
	now := time.Now().UnixNano()
	pl, ok := parsePayload(ev.Data)
	if !ok || pl.run != b.runID || pl.phase <= 0 || pl.phase >= len(b.phases) {
		b.stray.Add(1)
		return
	}
	ph := b.phases[pl.phase].Load()
	if ph == nil && b.worker {
		// A worker learns of phases from their messages; the coordinator
		// knows which messages were sent (workers.go).
		ph = b.workerPhase(pl.phase)
	}
	if ph == nil {
		b.stray.Add(1)
		return
	}
	var m *msgState
	if b.worker {
		if m = ph.slot(pl.seq); m != nil {
			atomicMax(&ph.nextSeq, pl.seq+1)
			atomicMax(&m.lastAt, now)
		}
	} else if m = ph.lookup(pl.seq); m != nil && m.expected.Load() < 0 {
		m = nil
	}
	if m == nil {
		b.stray.Add(1)
		return
	}
	ph.latency.Record(time.Duration(now - pl.sent))
	atomicMax(&ph.lastDelivery, now)
	resend := false
	for _, cm := range ev.Comments {
		if cm == "resend" {
			resend = true
			ph.resent.Add(1)
			break
		}
	}
	if ph.qos && b.acker != nil && ev.ID != "" {
		b.acker.add(c, ev.ID)
	}
	if !keyMatches(pl.key, c.user, c.tenant) && !channelKeyMatches(pl.key, c.channels) {
		ph.misrouted.Add(1)
		return
	}
	if c.seenPhase != ph.id {
		c.seen = resetBits(c.seen)
		c.resends = resetBits(c.resends)
		c.seenPhase = ph.id
	}
	w := int(pl.seq >> 6)
	c.seen = growBits(c.seen, w)
	bit := uint64(1) << (pl.seq & 63)
	if c.seen[w]&bit != 0 {
		ph.duplicated.Add(1)
		// A duplicate that is, or follows, a redelivery is at-least-once
		// at work (e.g. the replay on connect racing the live send).
		if resend || (w < len(c.resends) && c.resends[w]&bit != 0) {
			ph.dupResent.Add(1)
		}
		return
	}
	c.seen[w] |= bit
	if resend {
		c.resends = growBits(c.resends, w)
		c.resends[w] |= bit
	}
	ph.unique.Add(1)
	if m.received.Add(1) == m.expected.Load() {
		ph.completion.Record(time.Duration(now - m.sentAt.Load()))
	}
}

func (b *bench) noteConnError(what string) {
	b.errMu.Lock()
	if len(b.connErrors) < 50 || b.connErrors[what] > 0 {
		b.connErrors[what]++
	}
	b.errMu.Unlock()
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// shortErr strips the addresses from network errors so that equal causes
// are counted together.
func shortErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// closeAll ends every connection, the workers' too, and waits (bounded)
// for the readers.
func (b *bench) closeAll(timeout time.Duration) {
	b.closing.Store(true)
	if len(b.workers) > 0 {
		b.closeWorkers(timeout)
	}
	for _, c := range b.clients {
		c.close()
	}
	done := make(chan struct{})
	go func() { b.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

func resetBits(b []uint64) []uint64 {
	clear(b)
	return b[:0]
}

// growBits makes word w of b addressable.
func growBits(b []uint64, w int) []uint64 {
	if w < len(b) {
		return b
	}
	if w < cap(b) {
		return b[:w+1]
	}
	return append(b, make([]uint64, w+1-len(b))...)
}

// startSettling starts run(i, settled) for i in [0, n), each on its own
// goroutine counted in wg, with at most concurrency of them started and not
// yet settled at a time (the scenarios' connection setups: settled is
// called once the first stream is open or failed; later calls are
// ignored). It returns ctx's error if ctx ends while it waits for a place,
// else a channel closed once every one has settled.
func startSettling(ctx context.Context, n, concurrency int, wg *sync.WaitGroup, run func(i int, settled func())) (<-chan struct{}, error) {
	sem := make(chan struct{}, concurrency)
	var settling sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		settling.Add(1)
		wg.Add(1)
		var once sync.Once
		go func() {
			defer wg.Done()
			run(i, func() { once.Do(func() { <-sem; settling.Done() }) })
		}()
	}
	done := make(chan struct{})
	go func() { settling.Wait(); close(done) }()
	return done, nil
}

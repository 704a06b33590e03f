package nacos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
)

// How long a peer's link is not dialed again after a dial failed, and
// after the peer answered that it serves none (a node of a version before
// links); its calls go over HTTP meanwhile.
const (
	linkRetryAfterFailure = 250 * time.Millisecond
	linkRetryAfterRefusal = time.Minute
)

// clientLink is this node's link to one peer: it sends requests and
// matches the replies to their callers.
type clientLink struct {
	t    *Transport
	peer Peer
	conn net.Conn
	w    frameWriter
	rd   frameReader

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*linkCall

	lastRead  atomic.Int64 // unix nanoseconds of the last frame read
	closed    chan struct{}
	closeOnce sync.Once
	err       error // why the link closed; set before closed is
}

// linkCall is one request waiting for its reply. Calls are pooled: done
// gets one value per use, from the reader that takes the call out of
// pending.
type linkCall struct {
	done chan struct{}
	rep  hub.Reply
	sent int64 // unix nanoseconds
}

var linkCalls = sync.Pool{New: func() any { return &linkCall{done: make(chan struct{}, 1)} }}

// waitTimers are the timers of link waits whose ctx has no deadline.
var waitTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// linkSlot is the state of this node's link to one peer.
type linkSlot struct {
	link    *clientLink
	dialing chan struct{} // closed when the running dial ends
	err     error         // of the last dial; errNoLinkPeer: use HTTP
	retryAt time.Time     // no new dial before
}

// linkTo returns the open link to p, dialing it first (once for all the
// callers that wait) when there is none. It returns nil and no error when
// the call is to go over HTTP: the peer serves no links, or its last dial
// failed less than linkRetryAfterFailure ago.
func (t *Transport) linkTo(ctx context.Context, p Peer) (*clientLink, error) {
	return t.link(ctx, p, false)
}

// link is linkTo; with redial, a failed dial is tried again at once (for
// keepLinks, not for every send).
func (t *Transport) link(ctx context.Context, p Peer, redial bool) (*clientLink, error) {
	if t.cfg.PerRequestHTTP {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		l, dialing, err := t.linkOrDial(p, attempt == 0, redial && attempt == 0)
		if dialing == nil {
			return l, err
		}
		select {
		case <-dialing:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// linkOrDial returns p's open link, or nothing (HTTP) while a new dial is
// not due (with redial it is, unless the peer serves no links), or else a
// channel that is closed when the dial that it starts (when mayDial) or
// that runs ends.
func (t *Transport) linkOrDial(p Peer, mayDial, redial bool) (*clientLink, <-chan struct{}, error) {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	slot := t.clientLinks[p.NodeID]
	if slot == nil {
		slot = &linkSlot{}
		t.clientLinks[p.NodeID] = slot
	}
	if l := slot.link; l != nil {
		if l.peer.Addr == p.Addr && !l.isClosed() {
			return l, nil, nil
		}
		l.close(errLinkClosed) // the peer moved (a restart on another address)
		slot.link = nil
		slot.retryAt = time.Time{}
	}
	if slot.dialing != nil {
		return nil, slot.dialing, nil
	}
	switch {
	case t.isClosed():
		return nil, nil, ErrClosed
	case !mayDial, time.Now().Before(slot.retryAt) && !(redial && !errors.Is(slot.err, errNoLinkPeer)):
		// The last dial failed (or gave a link that is gone already): this
		// call goes over HTTP, which reaches the peer if it is back.
		return nil, nil, nil
	}
	slot.dialing = make(chan struct{})
	t.linkDials.Go(func() { t.dialLink(p, slot) })
	return nil, slot.dialing, nil
}

// dialLink opens a link to p for slot.
func (t *Transport) dialLink(p Peer, slot *linkSlot) {
	ctx, cancel := context.WithTimeout(t.life, t.cfg.Timeout)
	l, err := t.openLink(ctx, p)
	cancel()
	if err == nil && t.isClosed() {
		l.close(ErrClosed)
		l, err = nil, ErrClosed
	}
	t.linksMu.Lock()
	slot.link, slot.err = l, err
	switch {
	case err == nil:
		slot.retryAt = time.Time{}
	case errors.Is(err, errNoLinkPeer):
		slot.retryAt = time.Now().Add(linkRetryAfterRefusal)
	default:
		slot.retryAt = time.Now().Add(linkRetryAfterFailure)
	}
	close(slot.dialing)
	slot.dialing = nil
	t.linksMu.Unlock()
	switch {
	case err == nil:
		t.log.Debug().Str("peer", p.NodeID).Str("addr", p.Addr).Msg("peer link open")
		go l.readReplies()
		t.linkOpened(l)
	case errors.Is(err, errNoLinkPeer):
		t.log.Info().Str("peer", p.NodeID).Str("addr", p.Addr).Msg("peer serves no links: one HTTP request per call")
	case errors.Is(err, ErrClosed):
	default:
		t.logPeerError("", PathLink, p, err)
	}
}

// openLink dials p and performs the handshake.
func (t *Transport) openLink(ctx context.Context, p Peer) (*clientLink, error) {
	conn, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*clientLink, error) {
		_ = conn.Close()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+PathLink, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", linkProtocol)
	nonce := signature.NewNonce()
	t.sign.signRequest(req, t.self.NodeID, p.NodeID, nonce, time.Now(), nil)
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return fail(errNoLinkPeer)
		}
		return fail(&peerStatusError{status: resp.StatusCode, msg: errLinkRefused.Error()})
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), linkProtocol) {
		return fail(fmt.Errorf("%w: upgraded to %q", errLinkRefused, resp.Header.Get("Upgrade")))
	}
	if err := t.sign.verifyReply(resp.Header, nonce, p.NodeID, http.StatusSwitchingProtocols, nil); err != nil {
		return fail(fmt.Errorf("link handshake: %w", err))
	}
	if stop() {
		_ = conn.SetDeadline(time.Time{})
	} else {
		return fail(ctx.Err())
	}
	l := &clientLink{t: t, peer: p, conn: conn, pending: make(map[uint64]*linkCall), closed: make(chan struct{})}
	max := int(t.cfg.MaxBodyBytes)
	l.w = frameWriter{conn: conn, timeout: t.cfg.Timeout, maxFrame: max,
		mac: t.sign.frameMAC(dirRequests, nonce, t.self.NodeID, p.NodeID), done: l.close}
	l.rd = frameReader{r: br, maxFrame: max, mac: t.sign.frameMAC(dirReplies, nonce, t.self.NodeID, p.NodeID)}
	l.lastRead.Store(time.Now().UnixNano())
	return l, nil
}

// send queues req and returns the call that waits for its reply.
func (l *clientLink) send(req *linkRequest) (*linkCall, error) {
	c := linkCalls.Get().(*linkCall)
	c.sent = time.Now().UnixNano()
	l.mu.Lock()
	if l.isClosed() {
		l.mu.Unlock()
		return nil, l.err
	}
	l.nextID++
	id := l.nextID
	l.pending[id] = c
	l.mu.Unlock()
	err := l.w.add(func(b []byte) []byte {
		req.id = id
		return appendRequest(b, req)
	}, false)
	if err != nil {
		l.abandon(c, id)
		return nil, err
	}
	return c, nil
}

// wait returns c's reply, or an error when ctx ends, deadline passes or
// the link breaks first; c is recycled. A link from which nothing was read
// while a call waited until its deadline is taken for dead (a peer host
// gone without closing its connections, or a peer that serves nothing)
// and closed; the next call dials again.
func (l *clientLink) wait(ctx context.Context, c *linkCall, id uint64, deadline time.Time) (hub.Reply, error) {
	var (
		timer   *time.Timer
		expired <-chan time.Time
	)
	if _, ok := ctx.Deadline(); !ok { // else ctx ends at deadline
		timer = waitTimers.Get().(*time.Timer)
		timer.Reset(time.Until(deadline))
		expired = timer.C
	}
	var err error
	select {
	case <-c.done:
	case <-l.closed:
		err = l.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = context.DeadlineExceeded
	}
	if timer != nil {
		timer.Stop()
		waitTimers.Put(timer)
	}
	if err == nil {
		rep := c.rep
		c.rep = hub.Reply{}
		linkCalls.Put(c)
		return rep, nil
	}
	if l.lastRead.Load() < c.sent && !errors.Is(err, context.Canceled) {
		l.close(fmt.Errorf("%w: no answer until a call's deadline", errLinkClosed))
	}
	l.abandon(c, id)
	return hub.Reply{}, err
}

// poll returns c's reply if it is in, without waiting; either way c is
// recycled.
func (l *clientLink) poll(c *linkCall, id uint64) (hub.Reply, bool) {
	select {
	case <-c.done:
		rep := c.rep
		c.rep = hub.Reply{}
		linkCalls.Put(c)
		return rep, true
	default:
		l.abandon(c, id)
		return hub.Reply{}, false
	}
}

// abandon stops waiting for call id and recycles c; when the reader has
// taken the call already, its value is awaited first.
func (l *clientLink) abandon(c *linkCall, id uint64) {
	l.mu.Lock()
	_, waiting := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if !waiting {
		<-c.done // the reader is about to deliver (it never blocks on it)
	}
	c.rep = hub.Reply{}
	linkCalls.Put(c)
}

// readReplies reads reply frames and wakes their callers until the link
// breaks.
func (l *clientLink) readReplies() {
	defer l.t.forgetLink(l)
	for {
		body, err := l.rd.next()
		if err != nil {
			l.close(fmt.Errorf("%w: %w", errLinkClosed, err))
			return
		}
		l.lastRead.Store(time.Now().UnixNano())
		rd := hubwire.NewReader(body)
		for rd.Len() > 0 {
			id, rep, err := readLinkReply(&rd)
			if err != nil {
				l.close(fmt.Errorf("%w: %w", errLinkClosed, err))
				return
			}
			l.mu.Lock()
			c := l.pending[id]
			delete(l.pending, id)
			l.mu.Unlock()
			if c != nil {
				c.rep = rep
				c.done <- struct{}{}
			}
		}
	}
}

// forgetLink drops the slot of a link that ended, unless a newer link or
// dial took it over: a peer that left the cluster leaves nothing behind.
func (t *Transport) forgetLink(l *clientLink) {
	t.linksMu.Lock()
	if slot := t.clientLinks[l.peer.NodeID]; slot != nil && slot.link == l && slot.dialing == nil {
		delete(t.clientLinks, l.peer.NodeID)
	}
	t.linksMu.Unlock()
}

// close ends the link with err; the calls waiting on it return err.
func (l *clientLink) close(err error) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		close(l.closed)
		l.mu.Unlock()
		_ = l.conn.Close()
	})
}

func (l *clientLink) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// closeClientLinks closes every link of this node (Close).
func (t *Transport) closeClientLinks() {
	t.linksMu.Lock()
	var links []*clientLink
	for _, slot := range t.clientLinks {
		if slot.link != nil {
			links = append(links, slot.link)
		}
	}
	t.linksMu.Unlock()
	for _, l := range links {
		l.close(ErrClosed)
	}
	t.linkDials.Wait()
}

package nacos

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/rs/zerolog"
)

// maxLinkRequestsInService bounds the requests of one link served off its
// reading goroutine (surveys, large deliveries); when they are all busy the
// link is not read, and its sender's queue fills.
const maxLinkRequestsInService = 256

// serverLink serves the requests arriving on one accepted peer link.
type serverLink struct {
	t     *Transport
	h     hub.Handler
	quick hub.QuickDeliverer // nil when h has no quick path
	log   zerolog.Logger
	conn  net.Conn
	from  string // the peer's node id
	rd    frameReader
	w     frameWriter
	ctx   context.Context // ends with the link
	stop  context.CancelFunc
	slots chan struct{}
	wg    sync.WaitGroup
}

// acceptLink turns an authenticated request to PathLink into a peer link:
// it answers 101 with a reply signed for the request's nonce and serves
// the link until it breaks or Run ends.
func (s *peerServer) acceptLink(w http.ResponseWriter, r *http.Request, from, nonce string, log zerolog.Logger) {
	t := s.t
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), linkProtocol) {
		w.Header().Set("Upgrade", linkProtocol)
		httpx.WriteError(w, http.StatusUpgradeRequired, "upgrade to "+linkProtocol+" required")
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		httpx.WriteError(w, http.StatusInternalServerError, "connection cannot be taken over")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		log.Warn().Err(err).Msg("peer link: hijack")
		return
	}
	if brw.Reader.Buffered() > 0 { // the sender waits for 101 before its first frame
		log.Warn().Msg("peer link: data before the handshake's answer")
		_ = conn.Close()
		return
	}
	h := http.Header{}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", linkProtocol)
	t.sign.signReply(h, nonce, t.self.NodeID, http.StatusSwitchingProtocols, nil)
	_ = conn.SetDeadline(time.Now().Add(t.cfg.Timeout))
	if _, err := io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\n"); err == nil {
		err = h.Write(brw)
		if err == nil {
			_, err = io.WriteString(brw, "\r\n")
		}
		if err == nil {
			err = brw.Flush()
		}
	}
	if err != nil {
		log.Debug().Err(err).Msg("peer link: answer the handshake")
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})

	ctx, stop := context.WithCancel(context.Background())
	l := &serverLink{t: t, h: s.h, log: log, conn: conn, ctx: ctx, stop: stop,
		slots: make(chan struct{}, maxLinkRequestsInService)}
	l.quick, _ = s.h.(hub.QuickDeliverer)
	l.rd = frameReader{r: bufio.NewReaderSize(conn, 64<<10), maxFrame: int(t.cfg.MaxBodyBytes),
		mac: t.sign.frameMAC(dirRequests, nonce, from, t.self.NodeID)}
	l.w = frameWriter{conn: conn, timeout: t.cfg.Timeout, maxFrame: int(t.cfg.MaxBodyBytes),
		mac: t.sign.frameMAC(dirReplies, nonce, from, t.self.NodeID), done: func(error) { _ = conn.Close() }}
	if !t.trackServerLink(l, true) {
		_ = conn.Close()
		return
	}
	defer t.trackServerLink(l, false)
	l.from = from
	t.interest.peerLinked(from, l)
	select {
	case t.linkWake <- struct{}{}:
	default:
	}
	defer t.interest.peerUnlinked(from, l)
	log.Debug().Msg("peer link accepted")
	l.serve()
}

// headerHasToken reports whether header name of h lists token
// (comma-separated, case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// serve reads frames until the link breaks or is closed; the replies to
// the requests that are answered at once go out together, once no whole
// frame is left in the read buffer.
func (l *serverLink) serve() {
	defer func() {
		l.stop()
		_ = l.conn.Close()
		l.wg.Wait()
	}()
	for {
		body, err := l.rd.next()
		if err != nil {
			ev := l.log.Debug()
			if errors.Is(err, errFrameMAC) || errors.Is(err, errFrameSize) {
				ev = l.log.Warn() // an authenticated peer does not send these
			}
			ev.Err(err).Msg("peer link ended")
			return
		}
		rd := hubwire.NewReader(body)
		for rd.Len() > 0 {
			req, err := readRequest(&rd)
			if err != nil {
				l.log.Warn().Err(err).Msg("peer link ended")
				return
			}
			l.handle(&req)
		}
		if l.rd.buffered() {
			continue
		}
		if err := l.w.flush(); err != nil {
			return
		}
	}
}

// handle serves one request: a small delivery on this goroutine, anything
// else on a goroutine of its own (at most maxLinkRequestsInService).
func (l *serverLink) handle(req *linkRequest) {
	if req.isInterest {
		l.t.interest.apply(l.from, l, req)
		l.reply(req.id, &hub.Reply{}, true)
		return
	}
	l.t.served.link.Add(1)
	if req.deliver {
		if err := req.event.Validate(); err != nil {
			l.reply(req.id, &hub.Reply{Error: err.Error()}, true)
			return
		}
		if l.quick != nil {
			if n, ok := l.quick.HandleDeliverQuick(req.app, req.target, req.event); ok {
				l.reply(req.id, &hub.Reply{Count: n}, true)
				return
			}
		}
	}
	select {
	case l.slots <- struct{}{}:
	case <-l.ctx.Done():
		return
	}
	l.wg.Add(1)
	go l.serveApart(*req) // a copy: the quick path keeps req on the reader's stack
}

// serveApart serves a request on a goroutine of its own and answers it.
func (l *serverLink) serveApart(req linkRequest) {
	defer func() {
		<-l.slots
		l.wg.Done()
	}()
	timeout := l.t.cfg.Timeout
	if d := time.Duration(req.timeoutMS) * time.Millisecond; d > 0 && d < timeout {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	rep := serveRequest(ctx, l.h, &req)
	l.reply(req.id, &rep, false)
}

// serveRequest hands a deliver or survey request from a peer (over a link
// or HTTP) to h; a survey's error becomes its reply's Error.
func serveRequest(ctx context.Context, h hub.Handler, req *linkRequest) hub.Reply {
	if req.deliver {
		return hub.Reply{Count: h.HandleDeliver(ctx, req.app, req.target, req.event)}
	}
	rep, err := h.HandleSurvey(ctx, req.app, req.request)
	if err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// reply queues the answer to request id; unless hold, it is written now.
func (l *serverLink) reply(id uint64, rep *hub.Reply, hold bool) {
	err := l.w.add(func(b []byte) []byte { return appendLinkReply(b, id, rep) }, hold)
	if errors.Is(err, errEntrySize) {
		// A survey reply over the limit: answer with the error instead.
		_ = l.w.add(func(b []byte) []byte {
			return appendLinkReply(b, id, &hub.Reply{Error: "reply larger than the peer body limit"})
		}, hold)
	}
}

// trackServerLink adds (on) or removes an accepted link; adding fails
// once the server has stopped.
func (t *Transport) trackServerLink(l *serverLink, on bool) bool {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if !on {
		delete(t.serverLinks, l)
		return true
	}
	if t.serverLinks == nil {
		return false // Run has not started or has ended
	}
	t.serverLinks[l] = struct{}{}
	return true
}

// closeServerLinks ends every accepted link and refuses new ones; Run
// calls it when it stops.
func (t *Transport) closeServerLinks() {
	t.linksMu.Lock()
	links := t.serverLinks
	t.serverLinks = nil
	t.linksMu.Unlock()
	for l := range links {
		l.stop()
		_ = l.conn.Close()
	}
}

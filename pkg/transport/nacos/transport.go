package nacos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
	"github.com/rs/zerolog"
)

// Peer API paths.
const (
	PathDeliver = "/pushd/peer/v1/deliver"
	PathSurvey  = "/pushd/peer/v1/survey"
)

// deliverBody is the JSON body of PathDeliver.
type deliverBody struct {
	App    string     `json:"app"`
	Target hub.Target `json:"target"`
	Event  hub.Event  `json:"event"`
}

// deliverReply is the JSON reply of PathDeliver.
type deliverReply struct {
	Count int `json:"count"`
}

// surveyBody is the JSON body of PathSurvey; the reply is a hub.Reply.
type surveyBody struct {
	App     string      `json:"app"`
	Request hub.Request `json:"request"`
}

// Transport is a hub.Transport over HTTP peers. Create it with New.
type Transport struct {
	cfg    Config
	log    zerolog.Logger
	disc   Discovery
	self   Peer
	sign   *signer
	nonces *signature.ReplayCache
	client *http.Client
	// notBefore is when New ran minus Config.ClockSkew, in whole
	// milliseconds like the timestamps: requests signed before it are
	// refused, as the nonces of a previous run of this node are gone.
	notBefore time.Time
	ln        net.Listener

	// The peer links: this node's to its peers (by node id) and the ones
	// accepted while Run serves (nil otherwise).
	linksMu     sync.Mutex
	clientLinks map[string]*linkSlot
	serverLinks map[*serverLink]struct{}
	linkDials   sync.WaitGroup
	interest    *interest
	linkWake    chan struct{} // a peer linked to this node: link back now
	// served counts the requests served from peers, by how they came.
	served struct{ link, http atomic.Int64 }

	running   atomic.Bool
	serving   atomic.Bool
	closed    chan struct{}
	life      context.Context // ends with Close
	endLife   context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Interface guard.
var _ hub.Transport = (*Transport)(nil)

// New validates cfg, binds the peer listener and returns the Transport. It
// takes ownership of cfg.Discovery (closing it on error too).
func New(cfg Config) (*Transport, error) {
	started := time.Now()
	if err := cfg.setDefaults(); err != nil {
		if cfg.Discovery != nil {
			_ = cfg.Discovery.Close()
		}
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = cfg.Discovery.Close()
		return nil, fmt.Errorf("nacos: listen %s: %w", cfg.Listen, err)
	}
	addr, err := advertise(cfg.AdvertiseAddr, ln.Addr())
	if err != nil {
		_ = ln.Close()
		_ = cfg.Discovery.Close()
		return nil, err
	}
	t := &Transport{
		cfg:         cfg,
		log:         cfg.Logger.With().Str("component", "nacos-transport").Logger(), // the caller's logger names the node
		disc:        cfg.Discovery,
		self:        Peer{NodeID: cfg.NodeID, Addr: addr, Version: cfg.Version},
		sign:        newSigner(cfg.Secret),
		nonces:      signature.NewReplayCache(cfg.MaxNonces),
		notBefore:   time.UnixMilli(started.Add(-cfg.ClockSkew).UnixMilli()),
		ln:          ln,
		closed:      make(chan struct{}),
		clientLinks: make(map[string]*linkSlot),
		interest:    newInterest(),
		linkWake:    make(chan struct{}, 1),
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                 nil, // peers are direct, never via HTTP_PROXY
				DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   32,
				IdleConnTimeout:       90 * time.Second,
				ResponseHeaderTimeout: 0, // bounded by the request ctx
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	t.life, t.endLife = context.WithCancel(context.Background())
	if t.sign == nil {
		t.log.Warn().Msg("peer authentication is OFF (AllowInsecure): anybody reaching the peer port can push events")
	}
	return t, nil
}

// Addr returns the address the peer API is bound to.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Self returns this node's peer entry as published to the Discovery.
func (t *Transport) Self() Peer { return t.self }

// Run serves the peer API with h, registers this node for Config.Apps and
// blocks until ctx ends; then it withdraws the registrations (closing the
// Discovery) and shuts the server down gracefully. It returns nil when ctx
// ended, or the error that stopped the server. Run may be called once.
func (t *Transport) Run(ctx context.Context, h hub.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if t.isClosed() {
		return ErrClosed
	}
	if !t.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	srv := &http.Server{
		Handler:           &peerServer{t: t, h: h},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       t.cfg.Timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(t.log.With().Str("source", "net/http").Logger(), "", 0),
	}
	t.linksMu.Lock()
	t.serverLinks = make(map[*serverLink]struct{})
	t.linksMu.Unlock()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(t.ln) }()
	linksCtx, stopLinks := context.WithCancel(ctx)
	var linkers sync.WaitGroup
	if !t.cfg.PerRequestHTTP {
		linkers.Go(func() { t.pushInterest(linksCtx) })
		linkers.Go(func() { t.keepLinks(linksCtx) })
	}
	t.serving.Store(true)
	t.log.Info().Str("addr", t.self.Addr).Strs("apps", t.cfg.Apps).Msg("peer api serving")

	for _, app := range t.cfg.Apps {
		if err := t.disc.Register(ctx, app, t.self); err != nil {
			// Discoveries retry on their own (the Nacos SDK re-registers on
			// reconnect); the node is serving either way.
			t.log.Warn().Err(err).Str("app", app).Msg("register peer")
		}
	}

	var err error
	select {
	case <-ctx.Done():
	case <-t.closed:
	case err = <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	t.serving.Store(false)
	stopLinks()
	linkers.Wait()
	if t.isClosed() {
		err = nil // Close stopped us; the listener error is its doing
	}
	if derr := t.disc.Close(); derr != nil {
		t.log.Warn().Err(derr).Msg("close discovery")
	}
	sctx, cancel := context.WithTimeout(context.Background(), t.cfg.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		_ = srv.Close()
		if err == nil {
			err = fmt.Errorf("nacos: shut down peer server: %w", serr)
		}
	}
	t.closeServerLinks() // net/http does not track the connections it gave away
	t.log.Info().Msg("peer api stopped")
	return err
}

// readyChecker is implemented by discoveries that can tell whether they
// are connected (Nacos).
type readyChecker interface {
	Ready(ctx context.Context) error
}

// Ready reports whether the node serves the peer API and its Discovery is
// healthy; for /readyz.
func (t *Transport) Ready(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
	}
	if !t.serving.Load() {
		return ErrNotServing
	}
	if rc, ok := t.disc.(readyChecker); ok {
		return rc.Ready(ctx)
	}
	return nil
}

// Close stops the peer server at once (Run returns), withdraws the
// registrations and releases the Discovery. Idempotent.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.endLife()
		t.serving.Store(false)
		t.closeErr = t.disc.Close()
		if !t.running.Load() {
			_ = t.ln.Close() // Run will not serve it; a running Run shuts down itself
		}
		t.client.CloseIdleConnections()
		t.closeClientLinks()
	})
	return t.closeErr
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// Deliver sends ev for the connections matching tgt to every other node of
// app and returns the sum of their counts. Unreachable or failing peers are
// skipped; the call returns by ctx's deadline (Config.Timeout when ctx has
// none) with what was answered. At-most-once between nodes.
func (t *Transport) Deliver(ctx context.Context, app string, tgt hub.Target, ev hub.Event) (int, error) {
	total := 0
	req := linkRequest{app: app, target: tgt, deliver: true, event: ev}
	err := t.fanOut(ctx, &req, func(_ Peer, rep *hub.Reply) { total += rep.Count })
	return total, err
}

// Survey asks every other node of app and returns their replies, each with
// the answering node's id. A node whose handler failed answers with
// Reply.Error set. Unreachable or failing peers are skipped; the call
// returns by ctx's deadline (Config.Timeout when ctx has none).
func (t *Transport) Survey(ctx context.Context, app string, req hub.Request) ([]hub.Reply, error) {
	var replies []hub.Reply
	lr := linkRequest{app: app, target: req.Target, request: req}
	err := t.fanOut(ctx, &lr, func(p Peer, rep *hub.Reply) {
		rep.NodeID = p.NodeID // the signed identity, whatever the peer says
		replies = append(replies, *rep)
	})
	return replies, err
}

// peerResult is one peer's verified reply (or its failure).
type peerResult struct {
	peer Peer
	rep  hub.Reply
	err  error
}

// linkWait is a request sent on a peer link, waiting for its reply.
type linkWait struct {
	peer Peer
	link *clientLink
	call *linkCall
	id   uint64
}

// fanOut sends req to every other peer of req.app, on its peer link or,
// while there is none, as an HTTP request, and calls merge (from this
// goroutine, one peer at a time) with each successful reply that arrived
// before the deadline.
func (t *Transport) fanOut(ctx context.Context, req *linkRequest, merge func(Peer, *hub.Reply)) error {
	if t.isClosed() {
		return ErrClosed
	}
	// Without a deadline of ctx the calls get Config.Timeout: a timer for
	// the link waits, a context only for the HTTP calls there are.
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = time.Now().Add(t.cfg.Timeout)
	}
	all, err := t.disc.Peers(ctx, req.app)
	if err != nil {
		return fmt.Errorf("nacos: peers of %s: %w", req.app, err)
	}
	req.timeoutMS = time.Until(deadline).Milliseconds()
	op := PathSurvey
	if req.deliver {
		op = PathDeliver
	}
	var (
		waitBuf [4]linkWait
		waits   = waitBuf[:0]
		results chan peerResult
		calls   int
		httpCtx context.Context
	)
	routed := req.target.All || !req.target.IsZero() // a target without ids goes everywhere
	for i, p := range all {
		if !t.isOther(all, i) || (routed && !t.interest.mayHold(p.NodeID, req.app, &req.target)) {
			continue
		}
		l, err := t.linkTo(ctx, p)
		if err == nil && l != nil {
			var c *linkCall
			if c, err = l.send(req); err == nil {
				waits = append(waits, linkWait{peer: p, link: l, call: c, id: req.id})
				continue
			}
		}
		if err != nil {
			t.logPeerError(req.app, op, p, err)
			continue
		}
		if results == nil {
			results = make(chan peerResult, len(all))
			var cancel context.CancelFunc
			// Bounded by the deadline, and cancelling the stragglers when
			// we stop waiting.
			httpCtx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		calls++
		go t.callInto(httpCtx, p, *req, results)
	}
	// Once the deadline has passed, the replies already in are still
	// taken, whatever the order of the peers.
	expired := false
	for _, w := range waits {
		var rep hub.Reply
		var err error
		if expired {
			var ok bool
			if rep, ok = w.link.poll(w.call, w.id); !ok {
				continue
			}
		} else if rep, err = w.link.wait(ctx, w.call, w.id, deadline); err != nil && (ctx.Err() != nil || !time.Now().Before(deadline)) {
			expired = true
			t.log.Debug().Str("app", req.app).Str("op", op).Str("peer", w.peer.NodeID).Msg("peer fan-out hit its deadline")
			continue
		}
		if err == nil && req.deliver && rep.Error != "" {
			err = &peerStatusError{status: http.StatusBadRequest, msg: rep.Error}
		}
		if err != nil {
			t.logPeerError(req.app, op, w.peer, err)
			continue
		}
		merge(w.peer, &rep)
	}
	for range calls {
		var r peerResult
		if expired {
			select {
			case r = <-results:
			default:
				continue
			}
		} else {
			select {
			case r = <-results:
			case <-httpCtx.Done():
				t.log.Debug().Str("app", req.app).Str("op", op).Msg("peer fan-out hit its deadline")
				expired = true
				continue
			}
		}
		if r.err != nil {
			t.logPeerError(req.app, op, r.peer, r.err)
			continue
		}
		merge(r.peer, &r.rep)
	}
	return nil
}

// keepLinks keeps a link open to every peer of this node's apps, checked
// every second and whenever a peer opened a link to this node (a peer that
// starts is reached at once), so that they learn this node's keys.
func (t *Transport) keepLinks(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, app := range t.cfg.Apps {
			peers, err := t.disc.Peers(ctx, app)
			if err != nil {
				continue
			}
			for i, p := range peers {
				if t.isOther(peers, i) {
					dctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
					_, _ = t.link(dctx, p, true)
					cancel()
				}
			}
		}
		select {
		case <-tick.C:
		case <-t.linkWake:
		case <-ctx.Done():
			return
		}
	}
}

// isOther reports whether peers[i] is another node than this one, named
// for the first time in peers (lists may repeat a node).
func (t *Transport) isOther(peers []Peer, i int) bool {
	id := peers[i].NodeID
	if id == t.self.NodeID || id == "" {
		return false
	}
	for _, p := range peers[:i] {
		if p.NodeID == id {
			return false
		}
	}
	return true
}

// peerStatusError is a non-200 answer of a peer.
type peerStatusError struct {
	status int
	msg    string
}

func (e *peerStatusError) Error() string {
	return fmt.Sprintf("peer answered %d: %s", e.status, e.msg)
}

func (t *Transport) logPeerError(app, path string, p Peer, err error) {
	ev := t.log.Debug()
	var se *peerStatusError
	if errors.As(err, &se) || errors.Is(err, errBadSig) || errors.Is(err, errUnsigned) {
		// A peer that rejects us or answers unsigned is misconfigured (other
		// secret, wrong node id in a static list) or not a pushd node.
		ev = t.log.Warn()
	}
	ev.Err(err).Str("app", app).Str("op", path).Str("peer", p.NodeID).Str("addr", p.Addr).Msg("peer skipped")
}

// callInto sends the result of call to results; req is a copy, so that a
// fan-out that calls no peer over HTTP keeps its request on its stack.
func (t *Transport) callInto(ctx context.Context, p Peer, req linkRequest, results chan<- peerResult) {
	rep, err := t.call(ctx, p, &req)
	results <- peerResult{peer: p, rep: rep, err: err}
}

// call posts req to p as one signed HTTP request (a peer without links)
// and returns its verified reply.
func (t *Transport) call(ctx context.Context, p Peer, req *linkRequest) (hub.Reply, error) {
	path, in := PathSurvey, any(surveyBody{App: req.app, Request: req.request})
	if req.deliver {
		path, in = PathDeliver, deliverBody{App: req.app, Target: req.target, Event: req.event}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return hub.Reply{}, fmt.Errorf("encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Addr+path, bytes.NewReader(body))
	if err != nil {
		return hub.Reply{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	nonce := signature.NewNonce()
	t.sign.signRequest(hreq, t.self.NodeID, p.NodeID, nonce, time.Now(), body)
	resp, err := t.client.Do(hreq)
	if err != nil {
		return hub.Reply{}, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, t.cfg.MaxBodyBytes+1))
	if err != nil {
		return hub.Reply{}, err
	}
	if int64(len(reply)) > t.cfg.MaxBodyBytes {
		return hub.Reply{}, fmt.Errorf("reply larger than %d bytes", t.cfg.MaxBodyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(reply, &e)
		return hub.Reply{}, &peerStatusError{status: resp.StatusCode, msg: e.Error}
	}
	if err := t.sign.verifyReply(resp.Header, nonce, p.NodeID, resp.StatusCode, reply); err != nil {
		return hub.Reply{}, fmt.Errorf("reply: %w", err)
	}
	var rep hub.Reply
	if req.deliver {
		var r deliverReply
		err = json.Unmarshal(reply, &r)
		rep.Count = r.Count
	} else {
		err = json.Unmarshal(reply, &rep)
	}
	if err != nil {
		return hub.Reply{}, fmt.Errorf("decode reply: %w", err)
	}
	return rep, nil
}

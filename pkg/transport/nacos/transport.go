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

	running   atomic.Bool
	serving   atomic.Bool
	closed    chan struct{}
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
		cfg:       cfg,
		log:       cfg.Logger.With().Str("component", "nacos-transport").Logger(), // the caller's logger names the node
		disc:      cfg.Discovery,
		self:      Peer{NodeID: cfg.NodeID, Addr: addr, Version: cfg.Version},
		sign:      newSigner(cfg.Secret),
		nonces:    signature.NewReplayCache(cfg.MaxNonces),
		notBefore: time.UnixMilli(started.Add(-cfg.ClockSkew).UnixMilli()),
		ln:        ln,
		closed:    make(chan struct{}),
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
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(t.ln) }()
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
		t.serving.Store(false)
		t.closeErr = t.disc.Close()
		if !t.running.Load() {
			_ = t.ln.Close() // Run will not serve it; a running Run shuts down itself
		}
		t.client.CloseIdleConnections()
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
	body, err := json.Marshal(deliverBody{App: app, Target: tgt, Event: ev})
	if err != nil {
		return 0, fmt.Errorf("nacos: encode deliver: %w", err)
	}
	total := 0
	err = t.fanOut(ctx, app, PathDeliver, body, func(p Peer, reply []byte) error {
		var r deliverReply
		if err := json.Unmarshal(reply, &r); err != nil {
			return err
		}
		total += r.Count
		return nil
	})
	return total, err
}

// Survey asks every other node of app and returns their replies, each with
// the answering node's id. A node whose handler failed answers with
// Reply.Error set. Unreachable or failing peers are skipped; the call
// returns by ctx's deadline (Config.Timeout when ctx has none).
func (t *Transport) Survey(ctx context.Context, app string, req hub.Request) ([]hub.Reply, error) {
	body, err := json.Marshal(surveyBody{App: app, Request: req})
	if err != nil {
		return nil, fmt.Errorf("nacos: encode survey: %w", err)
	}
	var replies []hub.Reply
	err = t.fanOut(ctx, app, PathSurvey, body, func(p Peer, reply []byte) error {
		var r hub.Reply
		if err := json.Unmarshal(reply, &r); err != nil {
			return err
		}
		r.NodeID = p.NodeID // the signed identity, whatever the body says
		replies = append(replies, r)
		return nil
	})
	return replies, err
}

// peerResult is one peer's verified reply body (or its failure).
type peerResult struct {
	peer Peer
	body []byte
	err  error
}

// fanOut posts body to every other peer of app in parallel and calls merge
// (from this goroutine, one peer at a time) with each successful reply that
// arrived before the deadline.
func (t *Transport) fanOut(ctx context.Context, app, path string, body []byte, merge func(Peer, []byte) error) error {
	if t.isClosed() {
		return ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.Timeout)
		defer cancel()
	}
	// Cancel the stragglers when we stop waiting for them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	all, err := t.disc.Peers(ctx, app)
	if err != nil {
		return fmt.Errorf("nacos: peers of %s: %w", app, err)
	}
	peers := t.others(all)
	if len(peers) == 0 {
		return nil
	}
	results := make(chan peerResult, len(peers))
	for _, p := range peers {
		go func() {
			b, err := t.call(ctx, p, path, body)
			results <- peerResult{peer: p, body: b, err: err}
		}()
	}
	for range peers {
		select {
		case r := <-results:
			if r.err == nil {
				if err := merge(r.peer, r.body); err != nil {
					r.err = fmt.Errorf("decode reply: %w", err)
				}
			}
			if r.err != nil {
				t.logPeerError(app, path, r.peer, r.err)
			}
		case <-ctx.Done():
			t.log.Debug().Str("app", app).Str("op", path).Msg("peer fan-out hit its deadline")
			return nil
		}
	}
	return nil
}

// others drops this node and duplicate node ids from peers.
func (t *Transport) others(peers []Peer) []Peer {
	out := make([]Peer, 0, len(peers))
	seen := make(map[string]bool, len(peers))
	for _, p := range peers {
		if p.NodeID == t.self.NodeID || p.NodeID == "" || seen[p.NodeID] {
			continue
		}
		seen[p.NodeID] = true
		out = append(out, p)
	}
	return out
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

// call posts one signed request to p and returns the verified reply body.
func (t *Transport) call(ctx context.Context, p Peer, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	nonce := signature.NewNonce()
	t.sign.signRequest(req, t.self.NodeID, p.NodeID, nonce, time.Now(), body)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, t.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(reply)) > t.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("reply larger than %d bytes", t.cfg.MaxBodyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(reply, &e)
		return nil, &peerStatusError{status: resp.StatusCode, msg: e.Error}
	}
	if err := t.sign.verifyReply(resp.Header, nonce, p.NodeID, resp.StatusCode, reply); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	return reply, nil
}

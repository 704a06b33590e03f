package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/signature"
)

// Event types.
const (
	TypeOnline     = "online"
	TypeOffline    = "offline"
	TypeConnect    = "connect"
	TypeDisconnect = "disconnect"
)

// HeaderEvent carries the event type on each POST.
const HeaderEvent = "X-Pushd-Event"

// Defaults of Config.
const (
	DefaultGrace       = 5 * time.Second
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 5
	DefaultBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultQueueSize   = 4096
	maxEventBody       = 64 << 10
)

var (
	// ErrRunning is returned by a second concurrent call of Run.
	ErrRunning = errors.New("notify: already running")
	// ErrInvalid is returned by Verify for a body that is not an event.
	ErrInvalid = errors.New("notify: invalid event")
)

// Config configures New.
type Config struct {
	// URL receives the events; required, absolute http(s).
	URL string
	// Secret signs each POST. Default empty: events are sent unsigned.
	Secret string
	// NodeID is sent as "node". Default empty.
	NodeID string
	// Grace is how long after a user's last connection closed the offline
	// is sent, unless a connection reopens. Default 5 s; -1 sends offline
	// at once.
	Grace time.Duration
	// EveryConnection also sends connect and disconnect for every
	// connection. Default false.
	EveryConnection bool
	// Timeout bounds one attempt. Default 5 s.
	Timeout time.Duration
	// MaxAttempts is how often one event is tried. Default 5.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles after
	// each further failure (up to MaxBackoff) and is jittered down by up to
	// half. Default 500 ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between attempts. Default 30 s.
	MaxBackoff time.Duration
	// QueueSize bounds the events waiting to be sent. Default 4096.
	QueueSize int
	// Cluster, when set, makes online and offline describe the user across
	// the cluster rather than on this node (see the package documentation).
	// Default nil: per node.
	Cluster Cluster
	// Client makes the calls. Default: a client without redirects.
	Client *http.Client
	// Logger receives failures and drops. The zero value logs nothing.
	Logger zerolog.Logger
}

// Cluster tells a Notifier about a user's connections on the other nodes
// of the cluster.
type Cluster interface {
	// OtherConnections lists the user's connections on the other nodes. It
	// may return a partial list with an error.
	OtherConnections(ctx context.Context, userID string) ([]RemoteConnection, error)
}

// RemoteConnection is a user's connection on another node.
type RemoteConnection struct {
	Node string
	// Opened is when the connection opened.
	Opened time.Time
}

// Presence describes one connection event, as the hub reports it.
type Presence struct {
	App          string
	UserID       string
	TenantID     string
	ConnectionID string
	// Connections is the user's number of connections on this node after
	// the event.
	Connections int
	// SessionDuration is how long the connection was (visibly) online.
	SessionDuration time.Duration
	// At is when it happened. Default: now. With a Cluster, a connect's At
	// should be when the hub opened the connection, the time other nodes
	// see for it.
	At time.Time
}

// Event is the JSON body of one notification.
type Event struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	App          string `json:"app"`
	UserID       string `json:"userId"`
	TenantID     string `json:"tenantId"`
	ConnectionID string `json:"connectionId"`
	Node         string `json:"node,omitempty"`
	Connections  int    `json:"connections"`
	// SessionDuration is in seconds.
	SessionDuration float64 `json:"sessionDuration"`
	// Timestamp is the event's time in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// Stats counts what a Notifier did since it was created.
type Stats struct {
	Sent    uint64 // events the backend accepted
	Covered uint64 // online/offline events left to another node (Cluster)
	Failed  uint64 // events given up on
	Dropped uint64 // events dropped because the queue was full
	Retries uint64 // attempts after the first
	Queued  int    // events waiting now
}

// Notifier turns connection events into presence notifications. Build it
// with New, feed it from the hub's hooks, and Run it.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    zerolog.Logger
	clock  clock

	mu    sync.Mutex
	users map[string]*userState // by app + "\x00" + user id
	queue []Event               // ring buffer
	head  int
	size  int

	wake    chan struct{}
	running atomic.Bool

	sent, covered, failed, dropped, retries atomic.Uint64
}

type userState struct {
	count   int
	online  bool     // an online was queued and no offline yet
	pending *pending // offline waiting for the grace to pass
}

type pending struct {
	timer stopper
	last  Presence
}

// New validates cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	return newNotifier(cfg, realClock{})
}

func newNotifier(cfg Config, clk clock) (*Notifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("notify: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	switch {
	case cfg.Grace < -1:
		return nil, errors.New("notify: Grace must be positive or -1")
	case cfg.Timeout < 0, cfg.Backoff < 0, cfg.MaxBackoff < 0:
		return nil, errors.New("notify: negative duration")
	case cfg.MaxAttempts < 0, cfg.QueueSize < 0:
		return nil, errors.New("notify: negative MaxAttempts or QueueSize")
	}
	n := &Notifier{
		cfg:    cfg,
		client: cfg.Client,
		clock:  clk,
		users:  make(map[string]*userState),
		queue:  make([]Event, cfg.QueueSize),
		wake:   make(chan struct{}, 1),
	}
	if n.client == nil {
		n.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	n.log = cfg.Logger.With().Str("component", "notify").Logger()
	return n, nil
}

// Connected records that a connection opened. It queues online for the
// user's first connection (unless it cancels a pending offline) and, with
// EveryConnection, connect. It does not block.
func (n *Notifier) Connected(p Presence) {
	p = n.stamp(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.UserID != "" {
		key := userKey(p)
		st := n.users[key]
		if st == nil {
			st = &userState{}
			n.users[key] = st
		}
		st.count++
		switch {
		case st.pending != nil: // back within the grace: stays online
			st.pending.timer.Stop()
			st.pending = nil
		case !st.online:
			st.online = true
			n.enqueueLocked(TypeOnline, p)
		}
	}
	if n.cfg.EveryConnection {
		n.enqueueLocked(TypeConnect, p)
	}
}

// Disconnected records that a connection closed. With EveryConnection it
// queues disconnect; when it was the user's last connection, offline
// follows after Grace unless a connection opens meanwhile. It does not
// block.
func (n *Notifier) Disconnected(p Presence) {
	p = n.stamp(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.EveryConnection {
		n.enqueueLocked(TypeDisconnect, p)
	}
	if p.UserID == "" {
		return
	}
	key := userKey(p)
	st := n.users[key]
	if st == nil || st.count == 0 {
		return // a connection we never saw open
	}
	st.count--
	if st.count > 0 {
		return
	}
	if n.cfg.Grace < 0 {
		n.goOfflineLocked(key, st, p)
		return
	}
	pd := &pending{last: p}
	pd.timer = n.clock.AfterFunc(n.cfg.Grace, func() { n.graceOver(key, pd) })
	st.pending = pd
}

func (n *Notifier) graceOver(key string, pd *pending) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.users[key]
	if st == nil || st.pending != pd {
		return // cancelled by a reconnect
	}
	n.goOfflineLocked(key, st, pd.last)
}

func (n *Notifier) goOfflineLocked(key string, st *userState, p Presence) {
	if st.online {
		n.enqueueLocked(TypeOffline, p)
	}
	delete(n.users, key)
}

func (n *Notifier) stamp(p Presence) Presence {
	if p.At.IsZero() {
		p.At = n.clock.Now()
	}
	return p
}

func userKey(p Presence) string { return p.App + "\x00" + p.UserID }

func (n *Notifier) enqueueLocked(typ string, p Presence) {
	ev := Event{
		ID:              newID(),
		Type:            typ,
		App:             p.App,
		UserID:          p.UserID,
		TenantID:        p.TenantID,
		ConnectionID:    p.ConnectionID,
		Node:            n.cfg.NodeID,
		Connections:     p.Connections,
		SessionDuration: p.SessionDuration.Seconds(),
		Timestamp:       p.At.UnixMilli(),
	}
	if len(n.queue) == 0 {
		n.drop(ev)
		return
	}
	if n.size == len(n.queue) {
		n.drop(n.queue[n.head])
		n.head = (n.head + 1) % len(n.queue)
		n.size--
	}
	n.queue[(n.head+n.size)%len(n.queue)] = ev
	n.size++
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) drop(ev Event) {
	d := n.dropped.Add(1)
	if d&(d-1) == 0 { // 1, 2, 4, 8, …: a full queue must not flood the log
		n.log.Warn().Str("event", ev.Type).Str("app", ev.App).Str("user", ev.UserID).
			Uint64("dropped_total", d).Msg("notification queue full, dropped the oldest event")
	}
}

func (n *Notifier) pop() (Event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.size == 0 {
		return Event{}, false
	}
	ev := n.queue[n.head]
	n.queue[n.head] = Event{}
	n.head = (n.head + 1) % len(n.queue)
	n.size--
	return ev, true
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	queued := n.size
	n.mu.Unlock()
	return Stats{Sent: n.sent.Load(), Covered: n.covered.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load(),
		Retries: n.retries.Load(), Queued: queued}
}

// Run sends queued events, one at a time, until ctx ends; then it returns
// nil. A second concurrent Run returns ErrRunning.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.running.Store(false)
	for {
		ev, ok := n.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-n.wake:
				continue
			}
		}
		if n.coveredElsewhere(ctx, ev) {
			n.covered.Add(1)
			continue
		}
		n.deliver(ctx, ev)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// coveredElsewhere reports whether another node speaks for the user in
// this online or offline event: for online, one holds a connection of the
// user that opened earlier (at the same millisecond, the smaller node id
// wins); for offline, one still holds a connection. When the cluster cannot
// tell, this node speaks.
func (n *Notifier) coveredElsewhere(ctx context.Context, ev Event) bool {
	if n.cfg.Cluster == nil || ev.Type != TypeOnline && ev.Type != TypeOffline {
		return false
	}
	ask, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	others, err := n.cfg.Cluster.OtherConnections(ask, ev.UserID)
	cancel()
	for _, o := range others {
		opened := o.Opened.UnixMilli()
		if ev.Type == TypeOffline || opened < ev.Timestamp || opened == ev.Timestamp && o.Node < n.cfg.NodeID {
			n.log.Debug().Str("event", ev.Type).Str("user", ev.UserID).Str("node", o.Node).
				Msg("presence covered by another node")
			return true
		}
	}
	if err != nil && ctx.Err() == nil {
		n.log.Warn().Err(err).Str("event", ev.Type).Str("user", ev.UserID).
			Msg("cluster presence unknown, notifying as this node")
	}
	return false
}

// deliver tries one event up to MaxAttempts times.
func (n *Notifier) deliver(ctx context.Context, ev Event) {
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen with these field types
		n.failed.Add(1)
		return
	}
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, ev.Type, body)
		if err == nil {
			n.sent.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.cfg.MaxAttempts {
			n.failed.Add(1)
			n.log.Warn().Err(err).Str("event", ev.Type).Str("id", ev.ID).Str("app", ev.App).
				Str("user", ev.UserID).Int("attempts", attempt).Msg("notification given up")
			return
		}
		n.log.Debug().Err(err).Str("event", ev.Type).Int("attempt", attempt).Msg("notification failed, retrying")
		t := time.NewTimer(n.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		n.retries.Add(1)
	}
}

// backoff is the wait after the attempt-th failure: Backoff·2^(attempt-1),
// capped at MaxBackoff, minus a random part of up to half.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(mrand.Int64N(half + 1))
	}
	return d
}

// post makes one attempt. retry tells whether a failure may be retried.
func (n *Notifier) post(ctx context.Context, typ string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, typ)
	sum := signature.BodySHA256(body)
	if n.cfg.Secret == "" {
		req.Header.Set(signature.HeaderTimestamp, signature.Timestamp(time.Now()))
		req.Header.Set(signature.HeaderContentSHA256, sum)
	} else if err := signature.SignRequest(req, n.cfg.Secret, sum, time.Now(), typ); err != nil {
		return false, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return false, nil
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return true, fmt.Errorf("notify: backend answered %d", s)
	default:
		return false, fmt.Errorf("notify: backend answered %d", s)
	}
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Verify reads and checks a notification request, for backends written in
// Go, with the scheme of package signature: the signature (secret) over
// the method, path, query, body hash, timestamp, nonce and X-Pushd-Event;
// the timestamp within opts.Window (default 60 s) of opts.Now; only then the
// body (at most 64 KiB, or opts.MaxBody when smaller) against its hash;
// with opts.Replay (share one signature.ReplayCache between all requests)
// that the nonce is new. Errors wrap the signature package's errors or
// ErrInvalid.
func Verify(r *http.Request, secret string, opts signature.Options) (Event, error) {
	if opts.MaxBody <= 0 || opts.MaxBody > maxEventBody {
		opts.MaxBody = maxEventBody
	}
	typ := r.Header.Get(HeaderEvent)
	body, err := signature.VerifyRequest(r, secret, opts, typ)
	if err != nil {
		return Event{}, fmt.Errorf("notify: %w", err)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if ev.Type == "" || ev.Type != typ {
		return Event{}, fmt.Errorf("%w: type %q, %s %q", ErrInvalid, ev.Type, HeaderEvent, typ)
	}
	return ev, nil
}

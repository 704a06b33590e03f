package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Event types.
const (
	TypeOnline     = "online"
	TypeOffline    = "offline"
	TypeConnect    = "connect"
	TypeDisconnect = "disconnect"
	TypeJoin       = "join"  // a connection joined Event.Channel
	TypeLeave      = "leave" // a connection left Event.Channel
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
	// Channel is the channel of ChannelChanged.
	Channel string
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
	// Channel is the channel of join and leave.
	Channel     string `json:"channel,omitempty"`
	Node        string `json:"node,omitempty"`
	Connections int    `json:"connections"`
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

// New validates cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	return newNotifier(cfg, realClock{})
}

func newNotifier(cfg Config, clk clock) (*Notifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("notify: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	cfg.Grace = cmp.Or(cfg.Grace, DefaultGrace)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.QueueSize = cmp.Or(cfg.QueueSize, DefaultQueueSize)
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

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	queued := n.size
	n.mu.Unlock()
	return Stats{Sent: n.sent.Load(), Covered: n.covered.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load(),
		Retries: n.retries.Load(), Queued: queued}
}

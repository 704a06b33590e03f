package hub

import (
	"errors"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/qos"
)

// Version is pushd's version, reported in connect-finish and X-Sse-Version.
const Version = "0.1.0"

// Config configures a Hub. The zero value of every field but App is usable.
type Config struct {
	// App names the app this hub serves. Required.
	App string
	// NodeID identifies this node in the cluster. Default: the host name.
	NodeID string
	// QueueSize bounds the frames waiting for one connection's writer; a
	// connection that falls further behind is closed as slow. Default 256.
	QueueSize int
	// Heartbeat is the interval of the ":" comment that keeps proxies and
	// dead peers honest. Default 25 s; -1 disables it.
	Heartbeat time.Duration
	// ReconnectTime is sent to browsers as retry: and reconnectTime.
	// Default 5 s.
	ReconnectTime time.Duration
	// Keepalive overrides the connection lifetime a client asks for with
	// keepaliveTime. Default 0: the client's value, 15 min when absent, at
	// most MaxKeepalive; -1: connections never expire whatever the client
	// asks.
	Keepalive time.Duration
	// MaxConnectionsPerClient caps the connections of one browser profile
	// (same user, client id and tenant, and with ClientCapByDomain the same
	// domain) across the cluster; the oldest are closed with
	// ReasonClientLimit. Default 3; -1 disables the cap.
	MaxConnectionsPerClient int
	// MaxConnectionsPerUser caps the connections of one user (same user id
	// and tenant, or same access token for users without id) across the
	// cluster, with or without a client id; the oldest are closed with
	// ReasonUserLimit. Anonymous connections (neither id nor token) are not
	// counted. Default 16; -1 disables the cap.
	MaxConnectionsPerUser int
	// ClientCapByDomain keys the per-client cap also on the request's
	// domain (Host as the client sent it). Default false: Host is chosen
	// by the client and is not trusted.
	ClientCapByDomain bool
	// MaxConnections caps the app's connections on this node; Connect
	// beyond it fails with ErrTooManyConnections. Default 100 000; -1
	// disables the cap.
	MaxConnections int
	// MaxListeners caps the event names one connection listens to; a
	// Connect or ChangeListeners beyond it fails with ErrTooManyListeners.
	// Default 64; -1 disables the cap.
	MaxListeners int
	// MaxChannels caps the channels one connection is in; a Connect or
	// ChangeChannels beyond it fails with ErrTooManyChannels, and Subscribe
	// leaves a connection that would exceed it unchanged. Default 16; -1
	// disables the cap.
	MaxChannels int
	// MaxNameLength caps the length of an event or listener name in
	// bytes; a longer one fails with ErrInvalidName. Default 128; -1
	// disables the cap.
	MaxNameLength int
	// MaxKeepalive is the longest lifetime a client may choose with
	// keepaliveTime (including "unlimited") when Keepalive is 0. Default
	// 24 h; -1 lets clients choose unlimited. A connection also ends when
	// its user's credential expires (User.ExpiresAt), whichever is first.
	MaxKeepalive time.Duration
	// WriteTimeout bounds one write to a connection. Default 10 s.
	WriteTimeout time.Duration
	// Writers is the number of goroutines writing to hijacked HTTP/1.x
	// connections. Default 4 per CPU; -1 disables hijacking, so every
	// stream is written by its own request goroutine.
	Writers int
	// Transport reaches the other nodes. Default nil: a single node.
	Transport Transport
	// SurveyTimeout bounds cluster-wide queries and commands. Default 3 s.
	SurveyTimeout time.Duration
	// ObserveCluster, when set, is told the duration and error of every
	// call to the Transport: op is "deliver" or the survey operation
	// (OpStats, OpUsers, …). It must not block.
	ObserveCluster func(op string, took time.Duration, err error)
	// RouteTimeout bounds how long Connect waits until a transport that
	// implements InterestWaiter routes the new connection's keys to this
	// node, so that sends from any node reach the connection once its
	// connect-finish is out. A connection whose routes are not confirmed in
	// time is served anyway. Default 2 s.
	RouteTimeout time.Duration
	// StoreTimeout bounds storing one send in the QoS repository or the
	// history store: a store that does not answer in time fails the send
	// with ErrStore (503), so a caller is never left waiting on an
	// unreachable Redis. Default 5 s.
	StoreTimeout time.Duration
	// Repository stores QoS messages. Default nil: QoS sends fail with
	// ErrQoSDisabled.
	Repository qos.Repository
	// History keeps the recent events of resumable streams, so that a
	// reconnect with Last-Event-ID gets what it missed (resume.go).
	// Default nil: nothing resumes.
	History HistoryStore
	// StreamHistory says whether a stream keeps history and how much: a
	// channel's stream is "c:" + name, a user's "u:" + id. Required with
	// History.
	StreamHistory func(stream string) (history.Options, bool)
	// QoSTTL is how long an unacknowledged QoS message is kept when the
	// send names no TTL. Default 24 h.
	QoSTTL time.Duration
	// RedeliverAfter is how long a connected, acknowledging client has to
	// acknowledge a QoS message before it is sent again. Default 30 s; -1
	// disables redelivery while connected (it still happens on connect).
	RedeliverAfter time.Duration
	// Logger receives the hub's logs. The zero value logs nothing.
	Logger zerolog.Logger
}

func (c *Config) setDefaults() error {
	if c.App == "" {
		return errors.New("hub: Config.App is required")
	}
	if c.History != nil && c.StreamHistory == nil {
		return errors.New("hub: Config.StreamHistory is required with History")
	}
	if c.NodeID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "node"
		}
		c.NodeID = host
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 25 * time.Second
	}
	if c.ReconnectTime <= 0 {
		c.ReconnectTime = 5 * time.Second
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = 3
	}
	if c.MaxConnectionsPerUser == 0 {
		c.MaxConnectionsPerUser = 16
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 100_000
	}
	if c.MaxListeners == 0 {
		c.MaxListeners = 64
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = 16
	}
	if c.MaxNameLength == 0 {
		c.MaxNameLength = 128
	}
	if c.MaxKeepalive == 0 {
		c.MaxKeepalive = 24 * time.Hour
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SurveyTimeout <= 0 {
		c.SurveyTimeout = 3 * time.Second
	}
	if c.RouteTimeout <= 0 {
		c.RouteTimeout = 2 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.QoSTTL <= 0 {
		c.QoSTTL = 24 * time.Hour
	}
	if c.RedeliverAfter == 0 {
		c.RedeliverAfter = 30 * time.Second
	}
	return nil
}

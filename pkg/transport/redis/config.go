package redis

import (
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Config configures a Transport. Exactly one of Client and URL must be set;
// NodeID is required. Every other field has a default.
type Config struct {
	// Client is the Redis client to use: a standalone or Sentinel failover
	// client, or a *goredis.ClusterClient (sharded pub/sub, Redis ≥ 7; see
	// the package documentation). The Transport does not close it. Zero:
	// URL is used.
	Client goredis.UniversalClient
	// URL is a redis:// or rediss:// URL the Transport connects to with a
	// client of its own, closed by Close; with a master_name query
	// parameter it names the sentinels of a Sentinel-managed master, with
	// cluster=1 the seed nodes of a Redis Cluster (package
	// internal/redisurl). Zero: Client is used.
	URL string
	// Prefix starts every channel name. Zero: "pushd".
	Prefix string
	// NodeID names this node; it must be unique in the cluster (it names the
	// node's reply and probe channels). On a Redis Cluster it may not
	// contain { or } (they would change the channels' hash tags).
	// Required.
	NodeID string
	// Timeout bounds Deliver and Survey when their ctx has no deadline, and
	// a handler serving a request whose sender sent no deadline.
	// Zero: 2 s.
	Timeout time.Duration
	// ProbeInterval is how often the node publishes a probe to itself to
	// prove its subscription still receives. Zero: 3 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe may take to come back before the
	// subscription is torn down and made again. Zero: 2 s.
	ProbeTimeout time.Duration
	// FlushInterval is how long interest changes are collected before they
	// are sent as SUBSCRIBE/UNSUBSCRIBE commands. Zero: 5 ms.
	FlushInterval time.Duration
	// BatchSize is the number of pending interest changes that triggers a
	// flush before FlushInterval, and the most channels one SUBSCRIBE or
	// UNSUBSCRIBE command carries. Zero: 1000.
	BatchSize int
	// Workers is the number of requests from other nodes served at once.
	// Deliver requests arriving on one channel are served by one worker in
	// arrival order. Zero: 64.
	Workers int
	// QueueSize bounds the received deliveries waiting for a worker, and
	// separately the surveys. A request arriving at a full queue is dropped
	// (its sender stops waiting at its deadline). Zero: 4096.
	QueueSize int
	// MaxRoutedKeys is the most routing keys a target may have to be
	// published to each key's channel; a target with more is published once
	// to the app's KeyAll channel instead (every node gets it and matches
	// the target itself), so a send costs one message per node rather than
	// one per key. -1: no limit. Zero: 64.
	MaxRoutedKeys int
	// LegacyWire makes the node publish its requests as JSON, the format of
	// the versions before the binary one, which they can read (they drop
	// binary requests as undecodable, so their connections go uncounted).
	// Set it on the new nodes while a cluster is upgraded from such a
	// version, and clear it once no old node is left. Every node reads both
	// formats and answers in the format of the request. Zero: binary.
	LegacyWire bool
	// OnResubscribe is called (in its own goroutine) each time the
	// subscription was re-established after it had been lost: messages sent
	// in between may be missing, so the hub resyncs QoS. Not called for the
	// first subscription. Zero: nothing is called.
	OnResubscribe func()
	// Logger receives the transport's logs. Zero: nothing is logged (the
	// zero zerolog.Logger is disabled, like zerolog.Nop()).
	Logger zerolog.Logger
}

const (
	defaultPrefix        = "pushd"
	defaultTimeout       = 2 * time.Second
	defaultProbeInterval = 3 * time.Second
	defaultProbeTimeout  = 2 * time.Second
	defaultFlushInterval = 5 * time.Millisecond
	defaultBatchSize     = 1000
	defaultWorkers       = 64
	defaultQueueSize     = 4096
	defaultMaxRoutedKeys = 64
)

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.NodeID == "" {
		return cfg, fmt.Errorf("%w: NodeID is required", ErrConfig)
	}
	if (cfg.Client == nil) == (cfg.URL == "") {
		return cfg, fmt.Errorf("%w: set exactly one of Client and URL", ErrConfig)
	}
	for name, d := range map[string]time.Duration{
		"Timeout": cfg.Timeout, "ProbeInterval": cfg.ProbeInterval,
		"ProbeTimeout": cfg.ProbeTimeout, "FlushInterval": cfg.FlushInterval,
	} {
		if d < 0 {
			return cfg, fmt.Errorf("%w: %s is negative", ErrConfig, name)
		}
	}
	for name, n := range map[string]int{
		"BatchSize": cfg.BatchSize, "Workers": cfg.Workers,
		"QueueSize": cfg.QueueSize,
	} {
		if n < 0 {
			return cfg, fmt.Errorf("%w: %s is negative", ErrConfig, name)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = defaultProbeInterval
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = defaultProbeTimeout
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = defaultFlushInterval
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = defaultBatchSize
	}
	if cfg.Workers == 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = defaultQueueSize
	}
	switch {
	case cfg.MaxRoutedKeys == 0:
		cfg.MaxRoutedKeys = defaultMaxRoutedKeys
	case cfg.MaxRoutedKeys < -1:
		return cfg, fmt.Errorf("%w: MaxRoutedKeys below -1", ErrConfig)
	}
	return cfg, nil
}

package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/redisurl"
	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/history/redishistory"
	"github.com/pushd/pushd/pkg/hub"
)

// HistoryConfig is the store of the resumable streams' history (used
// when a namespace or an app's users keep history).
type HistoryConfig struct {
	// Store is memory or redis. Default memory: a node's own history,
	// which a reconnect to another node cannot use (it gets sse-gap).
	Store string `yaml:"store"`
	// RedisURL is the Redis of the redis store. Default qos.redis_url
	// (PUSHD_REDIS_URL sets it too).
	RedisURL string `yaml:"redis_url"`
	// Prefix starts every Redis key. Default "pushd".
	Prefix string `yaml:"prefix"`
	// MaxStreams and MaxBytes bound the memory store. Defaults 100 000
	// streams, 64 MiB.
	MaxStreams int   `yaml:"max_streams"`
	MaxBytes   int64 `yaml:"max_bytes"`
}

// StreamHistoryConfig is how much history one stream keeps.
type StreamHistoryConfig struct {
	// Size is the number of events kept. Default 100.
	Size int `yaml:"size"`
	// TTL is how long an event is kept. Default 10 min.
	TTL Duration `yaml:"ttl"`
}

func (sh *StreamHistoryConfig) options() history.Options {
	return history.Options{Size: cmp.Or(sh.Size, 100), TTL: cmp.Or(time.Duration(sh.TTL), 10*time.Minute)}
}

// validate fills the store's defaults (qos is validated first).
func (hc *HistoryConfig) validate(qosRedisURL string, p *problems) {
	hc.Store = cmp.Or(hc.Store, "memory")
	if !slices.Contains([]string{"memory", "redis"}, hc.Store) {
		p.addf("history.store: %q is not memory or redis", hc.Store)
	}
	hc.RedisURL = cmp.Or(hc.RedisURL, qosRedisURL)
	if hc.MaxStreams < 0 || hc.MaxBytes < -1 {
		p.addf("history: max_streams and max_bytes must not be negative")
	}
}

// validateHistory checks the history sizes of an app (key "apps[i]").
func validateHistory(ac AppConfig, key string, p *problems) {
	check := func(where string, sh *StreamHistoryConfig) {
		if sh != nil && (sh.Size < 0 || sh.TTL < 0) {
			p.addf("%s.%s: size and ttl must not be negative", key, where)
		}
	}
	check("user_history", ac.UserHistory)
	for i, ns := range ac.Channels.Namespaces {
		check(fmt.Sprintf("channels.namespaces[%d].history", i), ns.History)
	}
}

// keepsHistory reports whether any app has a stream with history.
func keepsHistory(apps []AppConfig) bool {
	for _, ac := range apps {
		if ac.UserHistory != nil {
			return true
		}
		for _, ns := range ac.Channels.Namespaces {
			if ns.History != nil {
				return true
			}
		}
	}
	return false
}

// newHistory opens the history store when an app needs one.
func (s *server) newHistory() error {
	if !keepsHistory(s.cfg.Apps) {
		return nil
	}
	hc := s.cfg.History
	if hc.Store == "redis" {
		client, err := redisurl.NewUniversalClient(hc.RedisURL)
		if err != nil {
			return fmt.Errorf("config: history.redis_url: %w", err)
		}
		s.historyRedis = client
		store, err := redishistory.New(client, redishistory.Config{Prefix: hc.Prefix})
		if err != nil {
			return fmt.Errorf("config: history: %w", err)
		}
		s.history = store
		return nil
	}
	store, err := history.NewMemory(history.MemoryConfig{MaxStreams: hc.MaxStreams, MaxBytes: hc.MaxBytes})
	if err != nil {
		return fmt.Errorf("config: history: %w", err)
	}
	s.history = store
	return nil
}

// streamHistory is an app's hub.Config.StreamHistory: a channel's stream
// keeps its namespace's history, a user's the app's user_history.
func streamHistory(ac AppConfig, policy *channels.Policy) func(string) (history.Options, bool) {
	byNamespace := map[string]history.Options{}
	for _, ns := range ac.Channels.Namespaces {
		if ns.History != nil {
			byNamespace[ns.name()] = ns.History.options()
		}
	}
	var users *history.Options
	if ac.UserHistory != nil {
		o := ac.UserHistory.options()
		users = &o
	}
	return func(stream string) (history.Options, bool) {
		if ch, ok := strings.CutPrefix(stream, hub.StreamChannelPrefix); ok && policy != nil {
			if ns, ok := policy.Lookup(ch); ok {
				o, ok := byNamespace[ns.Name]
				return o, ok
			}
			return history.Options{}, false
		}
		if _, ok := strings.CutPrefix(stream, hub.StreamUserPrefix); ok && users != nil {
			return *users, true
		}
		return history.Options{}, false
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/redisurl"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/redisqos"
	"github.com/pushd/pushd/pkg/transport/nacos"
	"github.com/pushd/pushd/pkg/transport/nacos/registry"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
)

// redisStats reports the counters of the Redis transport, an optional
// capability like hub.Readier and hub.Closer.
type redisStats interface{ Stats() redistransport.Stats }

// newRepository opens the QoS store of qos.repository.
func (s *server) newRepository() error {
	q := s.cfg.QoS
	switch q.Repository {
	case "redis":
		client, err := redisurl.NewUniversalClient(q.RedisURL)
		if err != nil {
			return fmt.Errorf("config: qos.redis_url: %w", err)
		}
		s.redis = client
		repo, err := redisqos.New(redisqos.Config{Client: s.redis, Prefix: q.Prefix,
			MaxPerRecipient: q.MaxPerRecipient, DefaultTTL: time.Duration(q.TTL), Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: qos: %w", err)
		}
		s.repo = repo
	default:
		repo, err := qos.NewMemory(qos.MemoryConfig{MaxPerRecipient: q.MaxPerRecipient,
			MaxMessages: q.MaxMessages, MaxBytes: q.MaxBytes, DefaultTTL: time.Duration(q.TTL), Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: qos: %w", err)
		}
		s.repo = repo
	}
	return nil
}

// newTransport builds the cluster transport of cluster.transport, if any.
func (s *server) newTransport() error {
	c := s.cfg.Cluster
	switch c.Transport {
	case "redis":
		t, err := redistransport.New(redistransport.Config{URL: c.RedisURL, Prefix: c.Prefix, NodeID: s.cfg.NodeID,
			Timeout: time.Duration(c.Timeout), LegacyWire: c.LegacyWire, Logger: s.log,
			OnResubscribe: func() { s.replayAll() }})
		if err != nil {
			return fmt.Errorf("config: cluster: %w", err)
		}
		s.transport = t
	case "nacos":
		var disc nacos.Discovery
		if len(c.Peers) > 0 {
			peers, err := nacos.ParsePeers(c.Peers...)
			if err != nil {
				return fmt.Errorf("config: cluster.peers: %w", err)
			}
			static, err := nacos.NewStatic(peers...)
			if err != nil {
				return fmt.Errorf("config: cluster.peers: %w", err)
			}
			disc = static
		} else if s.dry {
			// The SDK connects at once: check the addresses only.
			var errs []error
			for i, addr := range c.Nacos.Servers {
				if err := checkNacosServer(addr); err != nil {
					errs = append(errs, fmt.Errorf("config: cluster.nacos.servers[%d]: %w", i, err))
				}
			}
			if err := checkListenAddr(c.PeerListen); err != nil {
				errs = append(errs, fmt.Errorf("config: cluster.peer_listen: %w", err))
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			static, _ := nacos.NewStatic()
			disc = static
		} else {
			n, err := registry.New(registry.Config{Servers: c.Nacos.Servers, Namespace: c.Nacos.Namespace,
				Group: c.Nacos.Group, Username: c.Nacos.Username, Password: c.Nacos.Password, Dir: c.Nacos.Dir,
				SDKLogLevel: "error", Logger: s.log})
			if err != nil {
				return fmt.Errorf("config: cluster.nacos: %w", err)
			}
			disc = n
		}
		names := make([]string, len(s.cfg.Apps))
		for i, a := range s.cfg.Apps {
			names[i] = a.Name
		}
		listen := c.PeerListen
		if s.dry {
			if err := checkListenAddr(listen); err != nil {
				_ = disc.Close()
				return fmt.Errorf("config: cluster.peer_listen: %w", err)
			}
			listen = "127.0.0.1:0" // a port of loopback, not the one a running node holds
		}
		t, err := nacos.New(nacos.Config{NodeID: s.cfg.NodeID, Version: hub.Version, Apps: names, Discovery: disc,
			Secret: c.Secret, Listen: listen, AdvertiseAddr: c.AdvertiseAddr,
			Timeout: time.Duration(c.Timeout), PerRequestHTTP: c.PerRequestHTTP, Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: cluster: %w", err)
		}
		s.transport = t
	}
	return nil
}

// replayAll re-reads the QoS inboxes of every connection (after the
// transport may have lost messages).
func (s *server) replayAll() {
	for _, a := range s.apps {
		go a.hub.ReplayAll(context.Background())
	}
}

// ready reports why this node cannot serve, or nil.
func (s *server) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	return s.dependencies(ctx)
}

// dependencies reports which of the node's dependencies (the Redis
// stores, the transport) cannot be reached, or nil.
func (s *server) dependencies(ctx context.Context) error {
	if err := s.redisDependencies(ctx); err != nil {
		return err
	}
	if r, ok := s.transport.(hub.Readier); ok && s.cfg.Cluster.Transport != "redis" {
		if err := r.Ready(ctx); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// redisDependencies reports which of the node's Redis dependencies (the
// stores, the Redis transport) cannot be reached, or nil: without them the
// node can neither store nor route, unlike a Nacos registry that is down
// (the peers stay known).
func (s *server) redisDependencies(ctx context.Context) error {
	if err := pingRedis(ctx, s.redis); err != nil {
		return fmt.Errorf("qos redis: %w", err)
	}
	if err := pingRedis(ctx, s.historyRedis); err != nil {
		return fmt.Errorf("history redis: %w", err)
	}
	if r, ok := s.transport.(hub.Readier); ok && s.cfg.Cluster.Transport == "redis" {
		if err := r.Ready(ctx); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// pingRedis checks a store's Redis: every master of a Redis Cluster (a
// Ping reaches only one node), the server otherwise; nil is no Redis.
func pingRedis(ctx context.Context, c goredis.UniversalClient) error {
	if cc, ok := c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error { return m.Ping(ctx).Err() })
	}
	if c == nil {
		return nil
	}
	return c.Ping(ctx).Err()
}

package main

import (
	"context"
	"time"
)

// watchDependencies sheds this node's streams, once per outage, when its
// Redis dependencies (redisDependencies) stay unready for
// cluster.shed_after: its browsers
// reconnect (the readiness probe already sends no new ones here) to nodes
// that can serve them, instead of waiting on a node that can neither
// route nor store their messages.
func (s *server) watchDependencies(ctx context.Context) error {
	after := time.Duration(s.cfg.Cluster.ShedAfter)
	if after < 0 || (s.cfg.Cluster.Transport != "redis" && s.redis == nil && s.historyRedis == nil) {
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var since time.Time // when the current outage began; zero: none
	shed := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := s.redisDependencies(pctx)
			cancel()
			switch {
			case err == nil:
				since, shed = time.Time{}, false
			case since.IsZero():
				since = now
			case !shed && now.Sub(since) >= after && !s.draining.Load():
				shed = true
				s.log.Warn().Err(err).Dur("unready", now.Sub(since)).Msg("dependencies unreachable: closing this node's streams so they reconnect elsewhere")
				for _, a := range s.apps {
					go func() { _ = a.hub.Shed(ctx, time.Duration(s.cfg.Shutdown.DrainWindow)) }()
				}
			}
		}
	}
}

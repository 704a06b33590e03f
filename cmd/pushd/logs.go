package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// isTerminal reports whether f is a terminal, so that colours are only
// written where a person reads them.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newLogger builds the process logger: JSON lines, or colours on a
// terminal with log.format auto (the default) or console.
func newLogger(cfg *Config, out *os.File) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	var w io.Writer = out
	if cfg.Log.Format == "console" || (cfg.Log.Format == "auto" && isTerminal(out)) {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly, NoColor: !isTerminal(out)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("node", cfg.NodeID).Logger()
}

// redisLogger routes go-redis's own messages (reconnects, pool trouble)
// into the process log as warnings of component "redis".
type redisLogger struct{ log zerolog.Logger }

// Printf implements go-redis's internal logging interface.
func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// routeLibraryLogs sends the logs of libraries that have their own logger
// through log. go-redis's logger is process-wide by its design.
func routeLibraryLogs(log zerolog.Logger) {
	goredis.SetLogger(redisLogger{log.With().Str("component", "redis").Logger()})
}

// logSummaries logs, every interval, what each app did since the last
// summary, so that a busy node is not silent at info level: connections
// and users now; sends, deliveries, slow consumers cut off and errors in
// the period. errors adds up the app's 5xx answers, its failed or partial
// calls to other nodes (the cluster transport) and the presence hooks
// given up or dropped.
func (s *server) logSummaries(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return nil
	}
	last := make([]summaryCounts, len(s.apps))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i, a := range s.apps {
			now := a.summaryCounts()
			st := a.hub.LocalStats()
			s.log.Info().Str("app", a.cfg.Name).Int("connections", st.Connections).Int("users", st.Users).
				Uint64("sends", now.sends-last[i].sends).Uint64("deliveries", now.deliveries-last[i].deliveries).
				Uint64("slow_disconnects", now.slow-last[i].slow).Uint64("errors", now.errors-last[i].errors).
				Dur("period", interval).Msg("summary")
			last[i] = now
		}
	}
}

// summaryCounts are the counters a summary reports the growth of.
type summaryCounts struct{ sends, deliveries, slow, errors uint64 }

func (a *app) summaryCounts() summaryCounts {
	c := a.hub.Counters()
	n := summaryCounts{sends: c.Sends, deliveries: c.Deliveries, slow: c.SlowDisconnects,
		errors: a.failures.answers5xx.Load() + a.failures.cluster.Load()}
	if a.notifier != nil {
		st := a.notifier.Stats()
		n.errors += st.Failed + st.Dropped
	}
	return n
}

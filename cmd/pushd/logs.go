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
// summary, so that a busy node is not silent at info level.
func (s *server) logSummaries(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return nil
	}
	type snapshot struct{ sends, deliveries, slow uint64 }
	last := make([]snapshot, len(s.apps))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i, a := range s.apps {
			st, c := a.hub.LocalStats(), a.hub.Counters()
			now := snapshot{c.Sends, c.Deliveries, c.SlowDisconnects}
			s.log.Info().Str("app", a.cfg.Name).Int("connections", st.Connections).Int("users", st.Users).
				Uint64("sends", now.sends-last[i].sends).Uint64("deliveries", now.deliveries-last[i].deliveries).
				Uint64("slow_disconnects", now.slow-last[i].slow).Dur("period", interval).Msg("summary")
			last[i] = now
		}
	}
}

package redishistory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/history"
)

// Config configures New.
type Config struct {
	// Prefix starts every key. Zero means "pushd". It must not contain
	// "{" or "}".
	Prefix string
}

// Store is the history.Store kept in Redis: every node of a cluster reads
// the same offsets and epochs, and the history survives restarts of pushd
// (and, with persistence, of Redis). Every call is one Lua script, one
// round trip. The package documentation describes its keys.
type Store struct {
	client redis.UniversalClient
	prefix string
}

// Interface guard.
var _ history.Store = (*Store)(nil)

// New returns a store on client, which it does not close. It does not
// contact Redis.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redishistory: no client")
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redishistory: config: prefix %q contains { or }", cfg.Prefix)
	}
	return &Store{client: client, prefix: cmp.Or(cfg.Prefix, "pushd")}, nil
}

// Append adds e to the stream and returns its position.
func (s *Store) Append(ctx context.Context, app, stream string, e history.Entry, o history.Options) (history.Position, error) {
	if err := history.Check(stream, o); err != nil {
		return history.Position{}, err
	}
	res, err := appendScript.Run(ctx, s.client, s.keys(app, stream),
		history.NewEpoch(), ttlMillis(o.TTL), o.Size, e.Event, e.Data, e.ID).Slice()
	if err != nil {
		return history.Position{}, fmt.Errorf("redishistory: append to %s/%s: %w", app, stream, err)
	}
	p, err := position(res)
	if err != nil {
		return history.Position{}, fmt.Errorf("redishistory: append to %s/%s: %w", app, stream, err)
	}
	return p, nil
}

// Since reads up to limit entries after p.
func (s *Store) Since(ctx context.Context, app, stream string, p history.Position, limit int, o history.Options) (history.Result, error) {
	if err := history.CheckSince(stream, limit, o); err != nil {
		return history.Result{}, err
	}
	res, err := sinceScript.Run(ctx, s.client, s.keys(app, stream),
		history.NewEpoch(), ttlMillis(o.TTL), p.Epoch, p.Offset, limit+1).Slice()
	if err != nil {
		return history.Result{}, fmt.Errorf("redishistory: read %s/%s: %w", app, stream, err)
	}
	top, err := position(res)
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	var entries []history.Entry
	if err == nil {
		entries, err = parseEntries(res[2])
	}
	if err != nil {
		return history.Result{}, fmt.Errorf("redishistory: read %s/%s: %w", app, stream, err)
	}
	return history.Page(p, top, entries, limit, o), nil
}

// Top returns the stream's current position, starting its epoch if it has
// none.
func (s *Store) Top(ctx context.Context, app, stream string, o history.Options) (history.Position, error) {
	if err := history.Check(stream, o); err != nil {
		return history.Position{}, err
	}
	res, err := topScript.Run(ctx, s.client, s.keys(app, stream), history.NewEpoch(), ttlMillis(o.TTL)).Slice()
	if err == nil {
		var p history.Position
		if p, err = position(res); err == nil {
			return p, nil
		}
	}
	return history.Position{}, fmt.Errorf("redishistory: top of %s/%s: %w", app, stream, err)
}

// keys returns the meta hash and the entries of a stream. Both carry the
// hash tag {<len(app)>:<app>:<stream>}: one slot per stream, and no two
// pairs of app and stream share it.
func (s *Store) keys(app, stream string) []string {
	k := s.prefix + ":h:{" + strconv.Itoa(len(app)) + ":" + app + ":" + stream + "}:"
	return []string{k + "m", k + "s"}
}

// ttlMillis is ttl in whole milliseconds, at least 1.
func ttlMillis(ttl time.Duration) int64 {
	return max(int64((ttl+time.Millisecond-1)/time.Millisecond), 1)
}

// position reads the {epoch, offset, …} a script returns.
func position(res []any) (history.Position, error) {
	if len(res) < 2 {
		return history.Position{}, fmt.Errorf("unexpected reply %v", res)
	}
	epoch, ok := res[0].(string)
	n, ok2 := res[1].(int64)
	if !ok || !ok2 || n < 0 {
		return history.Position{}, fmt.Errorf("unexpected reply %v", res)
	}
	return history.Position{Offset: uint64(n), Epoch: epoch}, nil
}

// parseEntries reads the entries as XRANGE returns them: id, then a flat
// list of fields and values.
func parseEntries(v any) ([]history.Entry, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected entries %v", v)
	}
	out := make([]history.Entry, 0, len(items))
	for _, it := range items {
		pair, ok := it.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("unexpected entry %v", it)
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		off, _, _ := strings.Cut(id, "-")
		var e history.Entry
		var err error
		if e.Offset, err = strconv.ParseUint(off, 10, 64); err != nil || len(fields)%2 != 0 {
			return nil, fmt.Errorf("unexpected entry %v", it)
		}
		for i := 0; i < len(fields); i += 2 {
			val, _ := fields[i+1].(string)
			switch fields[i] {
			case "t":
				ms, err := strconv.ParseInt(val, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("entry %s: time %q: %w", id, val, err)
				}
				e.Time = time.UnixMilli(ms)
			case "e":
				e.Event = val
			case "d":
				e.Data = val
			case "i":
				e.ID = val
			}
		}
		out = append(out, e)
	}
	return out, nil
}

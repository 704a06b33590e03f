package redisqos

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/qos"
)

// Config configures New.
type Config struct {
	// Client is the connection to Redis (a *redis.Client, a cluster or a
	// sentinel client). Required. The store does not close it.
	Client redis.UniversalClient
	// Prefix starts every key. Zero means "pushd". It must not contain
	// "{" or "}".
	Prefix string
	// MaxPerRecipient bounds every inbox; saving into a full inbox drops its
	// oldest entry, counted and logged. Zero means 1000.
	MaxPerRecipient int
	// DefaultTTL is the lifetime of a message saved without ExpiresAt.
	// Zero means qos.DefaultTTL (24 h).
	DefaultTTL time.Duration
	// Logger receives warnings about evictions and notes about expiries.
	// The zero value logs nothing.
	Logger zerolog.Logger
}

// Store is the qos.Repository kept in Redis: it survives restarts of pushd
// and, with AOF, of Redis. Every Save is one Lua script, so it is atomic;
// an Ack is one script per 100 ids. The package documentation describes
// its keys.
type Store struct {
	client          redis.UniversalClient
	prefix          string
	maxPerRecipient int
	ttl             time.Duration
	log             zerolog.Logger
	closed          atomic.Bool
	reads           readQueue
	// tenanted holds the apps this process marked as having tenants (the
	// key {prefix}:{app}:tenanted is set): the mark is never taken back,
	// so it is set once per app and process.
	tenanted sync.Map

	stored, acked, expired, evicted atomic.Uint64
}

// Interface guards.
var (
	_ qos.Repository    = (*Store)(nil)
	_ qos.StatsReporter = (*Store)(nil)
)

// New returns a store on cfg.Client. It does not contact Redis.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisqos: config: no client")
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redisqos: config: prefix %q contains { or }", cfg.Prefix)
	}
	if cfg.MaxPerRecipient < 0 || cfg.DefaultTTL < 0 {
		return nil, errors.New("redisqos: config: negative bound or ttl")
	}
	r := &Store{
		client:          cfg.Client,
		prefix:          cmp.Or(cfg.Prefix, "pushd"),
		maxPerRecipient: cmp.Or(cfg.MaxPerRecipient, 1000),
		ttl:             cmp.Or(cfg.DefaultTTL, qos.DefaultTTL),
		log:             cfg.Logger.With().Str("component", "qos.redis").Logger(),
	}
	return r, nil
}

// appPrefix is the start of every key of app.
func (r *Store) appPrefix(app string) string {
	return r.prefix + ":{" + app + "}:"
}

// score is the sort key of a message in the sorted sets: the creation time
// in ms, taken from the id when qos.NewID made it (then score and id order
// agree), else from CreatedAt.
func score(m *qos.Message) int64 {
	if t, ok := qos.IDTime(m.ID); ok {
		return t.UnixMilli()
	}
	return m.CreatedAt.UnixMilli()
}

// sweepBatch is how many expired ids one run of sweepScript removes.
const sweepBatch = 1000

// Save stores m for app in one atomic step: the message, its place in
// every inbox and in the app's indices, or nothing. Saving an id that is
// stored already does nothing; a message whose ExpiresAt has passed (by the
// Redis server's clock) is not stored.
func (r *Store) Save(ctx context.Context, app string, m qos.Message) error {
	if r.closed.Load() {
		return qos.ErrClosed
	}
	m, err := qos.Prepare(m, time.Now(), r.ttl)
	if err != nil {
		return err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("redisqos: encode message %s: %w", m.ID, err)
	}
	p := r.appPrefix(app)
	inboxes := m.Inboxes()
	keys := make([]string, 0, 3+len(inboxes))
	keys = append(keys, p+"m:"+m.ID, p+"idx", p+"exp")
	for _, in := range inboxes {
		keys = append(keys, p+"q:"+in)
	}
	listening, tenants := "0", "0"
	if m.Listening {
		listening = "1"
	}
	if m.ShowsTenants() {
		tenants = "1"
	}
	res, err := saveScript.Run(ctx, r.client, keys,
		m.ID, score(&m), m.ExpiresAt.UnixMilli(), body, m.Event, listening, r.maxPerRecipient, p, tenants).Slice()
	if err != nil {
		return fmt.Errorf("redisqos: save %s/%s: %w", app, m.ID, err)
	}
	if len(res) != 3 {
		return fmt.Errorf("redisqos: save %s/%s: unexpected reply %v", app, m.ID, res)
	}
	r.noteExpired(app, res[2])
	switch status, _ := res[0].(int64); status {
	case 1:
		r.stored.Add(1)
	case -1:
		r.log.Debug().Str("app", app).Str("id", m.ID).Msg("qos message expired before it was saved")
	}
	evicted, _ := res[1].([]any)
	for i := 0; i+1 < len(evicted); i += 2 {
		r.evicted.Add(1)
		r.log.Warn().Str("app", app).Any("id", evicted[i]).Any("inbox", evicted[i+1]).
			Int("max", r.maxPerRecipient).Msg("qos inbox full: oldest message dropped")
	}
	return nil
}

// noteExpired counts and logs the ids a sweep removed.
func (r *Store) noteExpired(app string, reply any) {
	ids, _ := reply.([]any)
	if len(ids) == 0 {
		return
	}
	r.expired.Add(uint64(len(ids)))
	r.log.Info().Str("app", app).Int("count", len(ids)).Msg("qos messages expired")
	if e := r.log.Debug(); e.Enabled() {
		e.Str("app", app).Any("ids", ids).Msg("qos messages expired")
	}
}

// Pending returns up to limit messages waiting for rc, oldest first; a
// limit of zero or less means all of them. Concurrent calls share
// pipelines (see coalesce.go).
func (r *Store) Pending(ctx context.Context, app string, rc qos.Recipient, after string, limit int) ([]qos.Message, error) {
	if r.closed.Load() {
		return nil, qos.ErrClosed
	}
	p := r.appPrefix(app)
	direct, shared := rc.DirectInboxes(), rc.SharedInboxes()
	if len(direct)+len(shared) == 0 {
		return nil, nil
	}
	if rc.ShowsTenants() {
		if err := r.markTenanted(ctx, app); err != nil {
			return nil, err
		}
	}
	// A tenant-less user's own inbox (the last direct one) is read as a
	// shared one whether or not the app has tenants: without tenants its
	// acknowledgements take the message out of it, so none is recorded.
	ndirect := len(direct)
	if rc.TenantlessUser() {
		ndirect--
	}
	keys := make([]string, 0, len(direct)+len(shared))
	for _, in := range slices.Concat(direct, shared) {
		keys = append(keys, p+"q:"+in)
	}
	// Ids made by qos.NewID carry their score: start the range there.
	minScore := "-inf"
	if t, ok := qos.IDTime(after); ok {
		minScore = strconv.FormatInt(t.UnixMilli(), 10)
	}
	limit = max(limit, 0)
	args := []any{p, after, minScore, limit, rc.AckKey(), ndirect}
	for _, l := range rc.Listeners {
		args = append(args, l)
	}
	res, err := r.pending(ctx, keys, args)
	if err != nil {
		return nil, fmt.Errorf("redisqos: pending %s: %w", app, err)
	}
	type found struct {
		score float64
		id    string
		body  string
	}
	all := make([]found, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		s, _ := res[i].(string)
		id, _ := res[i+1].(string)
		body, _ := res[i+2].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			f = math.Inf(1)
		}
		all = append(all, found{f, id, body})
	}
	slices.SortFunc(all, func(x, y found) int {
		return cmp.Or(cmp.Compare(x.score, y.score), strings.Compare(x.id, y.id))
	})
	all = slices.CompactFunc(all, func(x, y found) bool { return x.id == y.id })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]qos.Message, 0, len(all))
	for _, f := range all {
		var m qos.Message
		if err := json.Unmarshal([]byte(f.body), &m); err != nil {
			// Not ours to fix; do not let one bad entry block an inbox.
			r.log.Error().Err(err).Str("app", app).Str("id", f.id).Msg("qos: undecodable message skipped")
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// ackChunk is how many ids one run of ackScript takes. Redis runs one
// script at a time, for every app: a 1000-id script would hold all of
// them up for milliseconds.
const ackChunk = 100

// Ack records that rc received ids (see qos.Memory.Ack for the rules), in
// atomic steps of up to ackChunk ids, so that other calls run between the
// steps. If a step fails, the steps before it stay done (acknowledging
// again is harmless) and Ack returns their count with the error.
func (r *Store) Ack(ctx context.Context, app string, rc qos.Recipient, ids ...string) (int, error) {
	if r.closed.Load() {
		return 0, qos.ErrClosed
	}
	ids, err := qos.PrepareAck(ids)
	if err != nil {
		return 0, err
	}
	direct, shared := rc.DirectInboxes(), rc.SharedInboxes()
	if len(ids) == 0 || len(direct)+len(shared) == 0 {
		return 0, nil
	}
	if rc.ShowsTenants() {
		if err := r.markTenanted(ctx, app); err != nil {
			return 0, err
		}
	}
	p := r.appPrefix(app)
	keys := make([]string, 0, len(direct)+len(shared))
	for _, in := range slices.Concat(direct, shared) {
		keys = append(keys, p+"q:"+in)
	}
	// For a tenant-less user the script decides, atomically, whether its
	// own inbox (the last direct one) is direct or shared.
	tenantless := 0
	if rc.TenantlessUser() {
		tenantless = 1
	}
	args := make([]any, 4, 4+min(len(ids), ackChunk))
	args[0], args[1], args[2], args[3] = p, rc.AckKey(), len(direct), tenantless
	n := 0
	for chunk := range slices.Chunk(ids, ackChunk) {
		args = args[:4]
		for _, id := range chunk {
			args = append(args, id)
		}
		k, err := ackScript.Run(ctx, r.client, keys, args...).Int()
		if err != nil {
			r.acked.Add(uint64(n))
			return n, fmt.Errorf("redisqos: ack %s: %w", app, err)
		}
		n += k
	}
	r.acked.Add(uint64(n))
	return n, nil
}

// markTenanted records that app has tenants (see
// qos.Recipient.TenantlessUser), once per app and process.
func (r *Store) markTenanted(ctx context.Context, app string) error {
	if _, ok := r.tenanted.Load(app); ok {
		return nil
	}
	if err := r.client.Set(ctx, r.appPrefix(app)+"tenanted", "1", 0).Err(); err != nil {
		return fmt.Errorf("redisqos: mark %s as having tenants: %w", app, err)
	}
	r.tenanted.Store(app, struct{}{})
	return nil
}

// List returns one page of app's messages matching f, oldest first, and
// how many match; a limit of zero or less means all from offset on. It
// sweeps expired ids first. With a filter it reads every message of the
// app: it is meant for introspection, not for hot paths.
func (r *Store) List(ctx context.Context, app string, f qos.Filter, offset, limit int) ([]qos.Message, int, error) {
	if r.closed.Load() {
		return nil, 0, qos.ErrClosed
	}
	p := r.appPrefix(app)
	for {
		res, err := sweepScript.Run(ctx, r.client, []string{p + "idx", p + "exp"}, p, sweepBatch).Slice()
		if err != nil {
			return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
		}
		r.noteExpired(app, res)
		if len(res) < sweepBatch {
			break
		}
	}
	offset = max(offset, 0)
	if f == (qos.Filter{}) {
		total, err := r.client.ZCard(ctx, p+"idx").Result()
		if err != nil {
			return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
		}
		if int64(offset) >= total {
			return nil, int(total), nil
		}
		stop := int64(-1)
		if limit > 0 {
			stop = int64(offset + limit - 1)
		}
		ids, err := r.client.ZRange(ctx, p+"idx", int64(offset), stop).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
		}
		ms, _, err := r.load(ctx, app, ids, f, 0, 0)
		return ms, int(total), err
	}
	ids, err := r.client.ZRange(ctx, p+"idx", 0, -1).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
	}
	return r.load(ctx, app, ids, f, offset, limit)
}

// load reads the messages ids of app, in the order of ids, skipping those
// that are gone, and returns the page of those that match f starting at
// offset with at most limit entries (all when limit <= 0), and how many
// match.
func (r *Store) load(ctx context.Context, app string, ids []string, f qos.Filter, offset, limit int) ([]qos.Message, int, error) {
	p := r.appPrefix(app)
	var out []qos.Message
	matched := 0
	for chunk := range slices.Chunk(ids, 500) {
		cmds := make([]*redis.StringCmd, len(chunk))
		_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = pipe.HGet(ctx, p+"m:"+id, "d")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
		}
		for i, cmd := range cmds {
			body, err := cmd.Result()
			if errors.Is(err, redis.Nil) {
				continue // expired since the sweep
			}
			if err != nil {
				return nil, 0, fmt.Errorf("redisqos: list %s: %w", app, err)
			}
			var m qos.Message
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				r.log.Error().Err(err).Str("app", app).Str("id", chunk[i]).Msg("qos: undecodable message skipped")
				continue
			}
			if !f.Matches(&m) {
				continue
			}
			if matched >= offset && (limit <= 0 || len(out) < limit) {
				out = append(out, m)
			}
			matched++
		}
	}
	return out, matched, nil
}

// Stats returns what this process counted so far.
func (r *Store) Stats() qos.Stats {
	return qos.Stats{
		Stored:  r.stored.Load(),
		Acked:   r.acked.Load(),
		Expired: r.expired.Load(),
		Evicted: r.evicted.Load(),
	}
}

// Close makes later calls return qos.ErrClosed. It does not close the client,
// which belongs to the caller. It is idempotent.
func (r *Store) Close() error {
	r.closed.Store(true)
	return nil
}

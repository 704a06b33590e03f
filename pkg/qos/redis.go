package qos

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
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// RedisConfig configures NewRedis.
type RedisConfig struct {
	// Client is the connection to Redis (a *redis.Client, a cluster or a
	// sentinel client). Required. The repository does not close it.
	Client redis.UniversalClient
	// Prefix starts every key. Zero means "pushd". It must not contain
	// "{" or "}".
	Prefix string
	// MaxPerRecipient bounds every inbox; saving into a full inbox drops its
	// oldest entry, counted and logged. Zero means 1000.
	MaxPerRecipient int
	// DefaultTTL is the lifetime of a message saved without ExpiresAt.
	// Zero means DefaultTTL (24 h).
	DefaultTTL time.Duration
	// Logger receives warnings about evictions and notes about expiries.
	// The zero value logs nothing.
	Logger zerolog.Logger
}

// Redis is the Repository kept in Redis: it survives restarts of pushd and,
// with AOF, of Redis. Every Save is one Lua script, so it is atomic; an Ack
// is one script per 100 ids.
//
// # Keys
//
// All keys of an app share the hash tag {app}, so the scripts also work on
// a Redis Cluster (an app lives on one shard):
//
//	{prefix}:{app}:m:{id}     hash: d (message JSON), e (event), l (listening),
//	                          n (inboxes holding it); PEXPIREAT ExpiresAt
//	{prefix}:{app}:a:{id}     set of the identities that acknowledged the
//	                          message in a shared inbox: u:{user} or k:{token}
//	                          without tenant, tu:{n}:{tenant}:{user} or
//	                          tk:{n}:{tenant}:{token} with a tenant of n bytes;
//	                          expires with the message
//	{prefix}:{app}:q:u:{user} sorted sets (inboxes), member id, score the
//	{prefix}:{app}:q:k:{token} creation time in ms, for user ids, tokens,
//	{prefix}:{app}:q:t:{tenant} tenants, channels and everybody; each
//	{prefix}:{app}:q:c:{chan}  expires with its last message
//	{prefix}:{app}:q:all
//	{prefix}:{app}:idx        sorted set of all the app's ids, by creation
//	{prefix}:{app}:exp        sorted set of all the app's ids, by ExpiresAt
//
// Inbox members whose message expired are dropped when Pending or Ack meet
// them; idx and exp are swept on Save and List.
//
// The layout is the one from before acknowledgements were told apart by
// tenant; only the members of a:{id} for users and tokens with a tenant
// are new. An old record (u:{user}, written for a user of any tenant)
// still counts for the user without tenant; a user with a tenant gets such
// a message once more and records its acknowledgement under its own key.
type Redis struct {
	client          redis.UniversalClient
	prefix          string
	maxPerRecipient int
	ttl             time.Duration
	log             zerolog.Logger
	closed          atomic.Bool

	stored, acked, expired, evicted atomic.Uint64
}

// Interface guards.
var (
	_ Repository    = (*Redis)(nil)
	_ StatsReporter = (*Redis)(nil)
)

// NewRedis returns a repository on cfg.Client. It does not contact Redis.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("qos: redis config: no client")
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("qos: redis config: prefix %q contains { or }", cfg.Prefix)
	}
	if cfg.MaxPerRecipient < 0 || cfg.DefaultTTL < 0 {
		return nil, errors.New("qos: redis config: negative bound or ttl")
	}
	r := &Redis{
		client:          cfg.Client,
		prefix:          cmp.Or(cfg.Prefix, "pushd"),
		maxPerRecipient: cmp.Or(cfg.MaxPerRecipient, 1000),
		ttl:             cmp.Or(cfg.DefaultTTL, DefaultTTL),
		log:             cfg.Logger.With().Str("component", "qos.redis").Logger(),
	}
	return r, nil
}

// appPrefix is the start of every key of app.
func (r *Redis) appPrefix(app string) string {
	return r.prefix + ":{" + app + "}:"
}

// score is the sort key of a message in the sorted sets: the creation time
// in ms, taken from the id when NewID made it (then score and id order
// agree), else from CreatedAt.
func score(m *Message) int64 {
	if t, ok := idTime(m.ID); ok {
		return t.UnixMilli()
	}
	return m.CreatedAt.UnixMilli()
}

// saveScript stores one message. KEYS: 1 message hash, 2 idx, 3 exp, 4…
// inboxes. ARGV: 1 id, 2 score, 3 expires at (ms), 4 JSON, 5 event,
// 6 listening (1/0), 7 inbox bound, 8 key prefix of the app.
// It returns {status, evicted, expired}: status 1 stored, 0 already stored,
// -1 already expired; evicted a flat list of id, inbox pairs; expired the
// ids the sweep removed.
var saveScript = redis.NewScript(`
local id, score, expireAt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, prefix = tonumber(ARGV[7]), ARGV[8]
local idx, exp = KEYS[2], KEYS[3]
-- Check everything that could fail before writing anything.
for i = 2, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= 'zset' then
    return redis.error_reply('WRONGTYPE qos: key ' .. KEYS[i] .. ' holds a ' .. t)
  end
end
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('WRONGTYPE qos: key ' .. KEYS[1] .. ' holds a ' .. t)
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)

-- Sweep ids whose message expired out of idx and exp.
local expired = {}
local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 100)
for _, g in ipairs(gone) do
  if redis.call('EXISTS', prefix .. 'm:' .. g) == 0 then
    redis.call('ZREM', exp, g)
    redis.call('ZREM', idx, g)
    redis.call('DEL', prefix .. 'a:' .. g)
    expired[#expired + 1] = g
  end
end

if t == 'hash' then return {0, {}, expired} end
if expireAt <= now then return {-1, {}, expired} end

local function extend(k)
  local ttl = redis.call('PTTL', k)
  if ttl == -1 or now + ttl < expireAt then redis.call('PEXPIREAT', k, expireAt) end
end

redis.call('HSET', KEYS[1], 'd', ARGV[4], 'e', ARGV[5], 'l', ARGV[6], 'n', #KEYS - 3)
redis.call('PEXPIREAT', KEYS[1], expireAt)
redis.call('ZADD', idx, score, id)
extend(idx)
redis.call('ZADD', exp, expireAt, id)
extend(exp)

local evicted = {}
for i = 4, #KEYS do
  local inbox = KEYS[i]
  redis.call('ZADD', inbox, score, id)
  extend(inbox)
  local over = redis.call('ZCARD', inbox) - max
  while over > 0 do
    local old = redis.call('ZPOPMIN', inbox)[1]
    local mk = prefix .. 'm:' .. old
    if redis.call('EXISTS', mk) == 1 then
      evicted[#evicted + 1] = old
      evicted[#evicted + 1] = inbox
      if redis.call('HINCRBY', mk, 'n', -1) <= 0 then
        redis.call('DEL', mk, prefix .. 'a:' .. old)
        redis.call('ZREM', idx, old)
        redis.call('ZREM', exp, old)
      end
    end
    over = over - 1
  end
end
return {1, evicted, expired}
`)

// pendingScript reads inboxes. KEYS: the recipient's direct inboxes, then
// its shared inboxes. ARGV: 1 key prefix of the app, 2 after, 3 minimum
// score, 4 limit per inbox (0: all), 5 ack key, 6 number of direct inboxes,
// 7… listeners. It returns a flat list of score, id, JSON.
var pendingScript = redis.NewScript(`
local prefix, after, minScore = ARGV[1], ARGV[2], ARGV[3]
local limit, ackKey, ndirect = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local listens = {}
for i = 7, #ARGV do listens[ARGV[i]] = true end
-- Byte-wise a > b: Lua's own string order follows the server's locale.
local function greater(a, b)
  if b == '' then return a ~= '' end
  for k = 1, math.min(#a, #b) do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local batch = 100
if limit > 0 and limit < batch then batch = limit end
local out = {}
for i = 1, #KEYS do
  local inbox, direct = KEYS[i], i <= ndirect
  local found, offset = 0, 0
  while limit == 0 or found < limit do
    local page = redis.call('ZRANGEBYSCORE', inbox, minScore, '+inf', 'WITHSCORES', 'LIMIT', offset, batch)
    if #page == 0 then break end
    local kept = 0
    for j = 1, #page, 2 do
      local id = page[j]
      if limit > 0 and found >= limit then break end
      kept = kept + 1
      if greater(id, after) then
        local h = redis.call('HMGET', prefix .. 'm:' .. id, 'd', 'e', 'l')
        if not h[1] then
          redis.call('ZREM', inbox, id) -- expired
          kept = kept - 1
        elseif (direct or redis.call('SISMEMBER', prefix .. 'a:' .. id, ackKey) == 0)
            and (h[3] ~= '1' or listens[h[2]]) then
          out[#out + 1] = page[j + 1]
          out[#out + 1] = id
          out[#out + 1] = h[1]
          found = found + 1
        end
      end
    end
    if #page < 2 * batch then break end
    offset = offset + kept
  end
end
return out
`)

// ackScript acknowledges. KEYS: the recipient's direct inboxes, then its
// shared inboxes. ARGV: 1 key prefix of the app, 2 ack key, 3 number of
// direct inboxes, 4… ids. It returns how many ids were pending for the
// recipient.
var ackScript = redis.NewScript(`
local prefix, ackKey, ndirect = ARGV[1], ARGV[2], tonumber(ARGV[3])
local count = 0
for a = 4, #ARGV do
  local id = ARGV[a]
  local mk = prefix .. 'm:' .. id
  if redis.call('EXISTS', mk) == 1 then
    local hit, removed = false, 0
    for i = 1, ndirect do
      if redis.call('ZREM', KEYS[i], id) == 1 then
        removed = removed + 1
        hit = true
      end
    end
    if ackKey ~= '' then
      for i = ndirect + 1, #KEYS do
        if redis.call('ZSCORE', KEYS[i], id) then
          local ak = prefix .. 'a:' .. id
          if redis.call('SADD', ak, ackKey) == 1 then
            hit = true
            local ttl = redis.call('PTTL', mk)
            if ttl > 0 then redis.call('PEXPIRE', ak, ttl) end
          end
          break
        end
      end
    end
    if removed > 0 and redis.call('HINCRBY', mk, 'n', -removed) <= 0 then
      redis.call('DEL', mk, prefix .. 'a:' .. id)
      redis.call('ZREM', prefix .. 'idx', id)
      redis.call('ZREM', prefix .. 'exp', id)
    end
    if hit then count = count + 1 end
  else
    for i = 1, ndirect do redis.call('ZREM', KEYS[i], id) end
  end
end
return count
`)

// sweepScript removes up to ARGV[2] ids of expired messages from idx and
// exp. KEYS: 1 idx, 2 exp. ARGV: 1 key prefix of the app, 2 batch. It
// returns the removed ids.
var sweepScript = redis.NewScript(`
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local expired = {}
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, g in ipairs(gone) do
  if redis.call('EXISTS', ARGV[1] .. 'm:' .. g) == 0 then
    redis.call('ZREM', KEYS[2], g)
    redis.call('ZREM', KEYS[1], g)
    redis.call('DEL', ARGV[1] .. 'a:' .. g)
    expired[#expired + 1] = g
  end
end
return expired
`)

const sweepBatch = 1000

// Save stores m for app in one atomic step: the message, its place in
// every inbox and in the app's indices, or nothing. Saving an id that is
// stored already does nothing; a message whose ExpiresAt has passed (by the
// Redis server's clock) is not stored.
func (r *Redis) Save(ctx context.Context, app string, m Message) error {
	if r.closed.Load() {
		return ErrClosed
	}
	m, err := prepare(m, time.Now(), r.ttl)
	if err != nil {
		return err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("qos: encode message %s: %w", m.ID, err)
	}
	p := r.appPrefix(app)
	inboxes := m.inboxes()
	keys := make([]string, 0, 3+len(inboxes))
	keys = append(keys, p+"m:"+m.ID, p+"idx", p+"exp")
	for _, in := range inboxes {
		keys = append(keys, p+"q:"+in)
	}
	listening := "0"
	if m.Listening {
		listening = "1"
	}
	res, err := saveScript.Run(ctx, r.client, keys,
		m.ID, score(&m), m.ExpiresAt.UnixMilli(), body, m.Event, listening, r.maxPerRecipient, p).Slice()
	if err != nil {
		return fmt.Errorf("qos: redis save %s/%s: %w", app, m.ID, err)
	}
	if len(res) != 3 {
		return fmt.Errorf("qos: redis save %s/%s: unexpected reply %v", app, m.ID, res)
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
func (r *Redis) noteExpired(app string, reply any) {
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
// limit of zero or less means all of them.
func (r *Redis) Pending(ctx context.Context, app string, rc Recipient, after string, limit int) ([]Message, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	p := r.appPrefix(app)
	direct, shared := rc.directInboxes(), rc.sharedInboxes()
	if len(direct)+len(shared) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(direct)+len(shared))
	for _, in := range slices.Concat(direct, shared) {
		keys = append(keys, p+"q:"+in)
	}
	// Ids made by NewID carry their score: start the range there.
	minScore := "-inf"
	if t, ok := idTime(after); ok {
		minScore = strconv.FormatInt(t.UnixMilli(), 10)
	}
	limit = max(limit, 0)
	args := []any{p, after, minScore, limit, rc.ackKey(), len(direct)}
	for _, l := range rc.Listeners {
		args = append(args, l)
	}
	res, err := pendingScript.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("qos: redis pending %s: %w", app, err)
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
	out := make([]Message, 0, len(all))
	for _, f := range all {
		var m Message
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

// Ack records that rc received ids (see Memory.Ack for the rules), in
// atomic steps of up to ackChunk ids, so that other calls run between the
// steps. If a step fails, the steps before it stay done (acknowledging
// again is harmless) and Ack returns their count with the error.
func (r *Redis) Ack(ctx context.Context, app string, rc Recipient, ids ...string) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	ids, err := ackIDs(ids)
	if err != nil {
		return 0, err
	}
	direct, shared := rc.directInboxes(), rc.sharedInboxes()
	if len(ids) == 0 || len(direct)+len(shared) == 0 {
		return 0, nil
	}
	p := r.appPrefix(app)
	keys := make([]string, 0, len(direct)+len(shared))
	for _, in := range slices.Concat(direct, shared) {
		keys = append(keys, p+"q:"+in)
	}
	args := make([]any, 3, 3+min(len(ids), ackChunk))
	args[0], args[1], args[2] = p, rc.ackKey(), len(direct)
	n := 0
	for chunk := range slices.Chunk(ids, ackChunk) {
		args = args[:3]
		for _, id := range chunk {
			args = append(args, id)
		}
		k, err := ackScript.Run(ctx, r.client, keys, args...).Int()
		if err != nil {
			r.acked.Add(uint64(n))
			return n, fmt.Errorf("qos: redis ack %s: %w", app, err)
		}
		n += k
	}
	r.acked.Add(uint64(n))
	return n, nil
}

// List returns one page of app's messages matching f, oldest first, and
// how many match; a limit of zero or less means all from offset on. It
// sweeps expired ids first. With a filter it reads every message of the
// app: it is meant for introspection, not for hot paths.
func (r *Redis) List(ctx context.Context, app string, f Filter, offset, limit int) ([]Message, int, error) {
	if r.closed.Load() {
		return nil, 0, ErrClosed
	}
	p := r.appPrefix(app)
	for {
		res, err := sweepScript.Run(ctx, r.client, []string{p + "idx", p + "exp"}, p, sweepBatch).Slice()
		if err != nil {
			return nil, 0, fmt.Errorf("qos: redis list %s: %w", app, err)
		}
		r.noteExpired(app, res)
		if len(res) < sweepBatch {
			break
		}
	}
	offset = max(offset, 0)
	if f.isZero() {
		total, err := r.client.ZCard(ctx, p+"idx").Result()
		if err != nil {
			return nil, 0, fmt.Errorf("qos: redis list %s: %w", app, err)
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
			return nil, 0, fmt.Errorf("qos: redis list %s: %w", app, err)
		}
		ms, err := r.load(ctx, app, ids, f)
		return ms, int(total), err
	}
	ids, err := r.client.ZRange(ctx, p+"idx", 0, -1).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("qos: redis list %s: %w", app, err)
	}
	ms, err := r.load(ctx, app, ids, f)
	if err != nil {
		return nil, 0, err
	}
	return paginate(ms, offset, limit), len(ms), nil
}

// load reads the messages ids of app that match f, in the order of ids,
// skipping those that are gone.
func (r *Redis) load(ctx context.Context, app string, ids []string, f Filter) ([]Message, error) {
	p := r.appPrefix(app)
	var out []Message
	for chunk := range slices.Chunk(ids, 500) {
		cmds := make([]*redis.StringCmd, len(chunk))
		_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = pipe.HGet(ctx, p+"m:"+id, "d")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("qos: redis list %s: %w", app, err)
		}
		for i, cmd := range cmds {
			body, err := cmd.Result()
			if errors.Is(err, redis.Nil) {
				continue // expired since the sweep
			}
			if err != nil {
				return nil, fmt.Errorf("qos: redis list %s: %w", app, err)
			}
			var m Message
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				r.log.Error().Err(err).Str("app", app).Str("id", chunk[i]).Msg("qos: undecodable message skipped")
				continue
			}
			if f.matches(&m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Stats returns what this process counted so far.
func (r *Redis) Stats() Stats {
	return Stats{
		Stored:  r.stored.Load(),
		Acked:   r.acked.Load(),
		Expired: r.expired.Load(),
		Evicted: r.evicted.Load(),
	}
}

// Close makes later calls return ErrClosed. It does not close the client,
// which belongs to the caller. It is idempotent.
func (r *Redis) Close() error {
	r.closed.Store(true)
	return nil
}

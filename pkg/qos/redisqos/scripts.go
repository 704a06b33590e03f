package redisqos

import "github.com/redis/go-redis/v9"

// saveScript stores one message. KEYS: 1 message hash, 2 idx, 3 exp, 4…
// inboxes. ARGV: 1 id, 2 score, 3 expires at (ms), 4 JSON, 5 event,
// 6 listening (1/0), 7 inbox bound, 8 key prefix of the app, 9 1 if the
// message is to tenants (the app has tenants: key tenanted).
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

if ARGV[9] == '1' then redis.call('SET', prefix .. 'tenanted', '1') end
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
// direct inboxes, 4 1 for a user without tenant (its own inbox, the last
// direct one, is shared if the app has tenants: key tenanted), 5… ids. It
// returns how many ids were pending for the recipient.
var ackScript = redis.NewScript(`
local prefix, ackKey, ndirect = ARGV[1], ARGV[2], tonumber(ARGV[3])
if ARGV[4] == '1' and redis.call('EXISTS', prefix .. 'tenanted') == 1 then
  ndirect = ndirect - 1
end
local count = 0
for a = 5, #ARGV do
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

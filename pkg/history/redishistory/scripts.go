package redishistory

import "github.com/redis/go-redis/v9"

// Every script takes KEYS 1 the stream's meta hash (e: epoch, n: last
// offset), 2 its Redis stream of entries (id <offset>-1, fields t: append
// time in ms, e: event, d: data, i: id), and starts with ensureLua, which
// reads the meta hash, making it with the candidate epoch ARGV[1] (and
// dropping entries of a lost epoch) when it is absent, and sets now (ms,
// the server's clock), e and n. ARGV[2] is the TTL in ms.
const ensureLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = redis.call('HMGET', KEYS[1], 'e', 'n')
local e, n = meta[1], tonumber(meta[2])
if not e then
  e, n = ARGV[1], 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', e, 'n', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
`

// appendScript appends one entry, trimmed to the size, and makes both keys
// live TTL from now. ARGV: 3 size, 4 event, 5 data, 6 id. It returns
// {epoch, offset, time in ms}.
var appendScript = redis.NewScript(ensureLua + `
n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], tostring(n) .. '-1', 't', now, 'e', ARGV[4], 'd', ARGV[5], 'i', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {e, n, now}
`)

// sinceScript reads up to ARGV[5] entries not older than the TTL after
// the position ARGV[3] (epoch), ARGV[4] (offset), or from the oldest when
// the position is of another epoch or beyond the last offset
// (history.Start). It returns {epoch, last offset, entries as XRANGE
// gives them}.
var sinceScript = redis.NewScript(ensureLua + `
local from = tonumber(ARGV[4]) + 1
if e ~= ARGV[3] or from > n + 1 then from = 1 end
local cutoff, want = now - tonumber(ARGV[2]), tonumber(ARGV[5])
local out = {}
while #out < want do
  local count = want - #out
  local batch = redis.call('XRANGE', KEYS[2], tostring(from), '+', 'COUNT', count)
  for _, it in ipairs(batch) do
    local f = it[2]
    for j = 1, #f, 2 do
      if f[j] == 't' then
        if tonumber(f[j + 1]) > cutoff then out[#out + 1] = it end
        break
      end
    end
  end
  if #batch < count then break end
  from = tonumber(string.match(batch[#batch][1], '^%d+')) + 1
end
return {e, n, out}
`)

// topScript returns {epoch, last offset}.
var topScript = redis.NewScript(ensureLua + `
return {e, n}
`)

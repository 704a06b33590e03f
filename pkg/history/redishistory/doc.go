// Package redishistory is the history.Store kept in Redis (standalone,
// Sentinel, and — its keys are ready for it — Redis Cluster, through a
// go-redis UniversalClient): every node reads the same offsets, epochs and
// entries. It lives apart from package history so that importing the
// contract and the memory store does not link go-redis; the rules (offsets,
// epochs, gaps, bounds) are the contract's, and Store passes the
// conformance suite history/historytest.
//
// # Keys
//
// A stream has two keys, both with the hash tag {<len(app)>:<app>:<stream>}
// (one slot per stream; the length keeps app "a:b" stream "c" apart from
// app "a" stream "b:c"):
//
//	{prefix}:h:{<len(app)>:<app>:<stream>}:m  hash: e (epoch), n (last offset)
//	{prefix}:h:{<len(app)>:<app>:<stream>}:s  Redis stream of the entries, id
//	                                          <offset>-1, fields t (append time,
//	                                          ms, the server's clock), e (event),
//	                                          d (data), i (id); at most Size
//	                                          entries (XADD MAXLEN)
//
// Append sets both to expire TTL after it (PEXPIRE); Since and Top make the
// hash, with the expiry, when it is absent, and change neither otherwise.
// Entries older than TTL inside a live stream stay until trimmed, and
// Since skips them.
//
// # Scripts and epochs
//
// Every call is one Lua script touching only the two keys of its stream,
// so one round trip, atomic, and on one slot of a cluster. Each script
// gets a candidate epoch made by the caller (history.NewEpoch) and, when
// the hash is absent (the stream is new, went TTL without appends, or Redis
// lost it), makes it with that epoch, dropping entries left of a lost
// epoch. Concurrent callers of several nodes thus agree: the first script
// makes the epoch, the others read it.
//
// Redis restarted without persistence (or a failover to a replica that
// had not received the writes, or an eviction by maxmemory) loses the
// hash: the stream's next call starts a new epoch at offset 0, and every
// position held by clients gets Gap EpochChanged instead of offsets that
// start again at 1 being taken for entries already seen. With AOF the
// history survives a restart unchanged. A restore of an older snapshot
// keeps the epoch but puts the offset back; a position beyond the top is
// therefore EpochChanged too (history.Classify), until new appends pass
// it: from then on it cannot be told from a position of the new entries.
//
// # Time
//
// Append times and the expiry of entries are taken from the server's
// clock (TIME), the same for every node; the TTL is rounded up to the
// millisecond.
package redishistory

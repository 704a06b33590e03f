// Package history owns pushd's resumable streams' store: the Store that
// keeps the recent entries of each stream (a channel with history, or a
// user's stream) with an offset per entry and an epoch per stream, and its
// in-memory implementation, Memory. The Redis one is package
// history/redishistory, apart so that importing the contract does not
// link go-redis; history/historytest is the conformance suite both pass.
// The package imports nothing else of pushd.
//
// # Offsets and epochs
//
// Append gives each entry of a stream the next offset, 1, 2, 3, …, so that
// a Position (the offset of the last entry seen, and the epoch) says
// exactly what a connection has seen, on every node. A stream's epoch is a
// short random string (NewEpoch) made at its first use, by Append, Since or
// Top; it changes when the stream's history is lost: the stream went TTL
// without appends, Memory was restarted or evicted it, Redis lost its keys
// (a restart without persistence). A position of another epoch then tells
// the reader that entries may be missing, instead of offsets that start
// again at 1 being taken for ones already seen.
//
// # Reading and gaps
//
// Since returns the entries after a position, oldest first, up to a limit
// (More says whether more follow), the stream's Top now, and a Gap when the
// position could not be served in full: EpochChanged for a position of
// another epoch (or beyond the top: the stream went back in time, as when
// Redis restores an older snapshot), with the entries from the oldest kept;
// else Trimmed or Expired when the entry right after the position is no
// longer kept, with the entries from the oldest kept after it. Trimmed
// means Size alone would have dropped it (it is more than Size entries
// behind the top), Expired that it was older than TTL. The rule is shared
// code, Classify (with Start, where a read starts, and Page, which builds
// a Result), so both stores tell gaps alike without keeping any record of
// what they dropped.
//
// # Bounds
//
// Every call gets the stream's Options: Size entries are kept (the oldest
// are dropped), each for TTL after its Append, and a stream is gone TTL
// after its last Append. Memory also bounds the number of streams and their
// bytes in all, evicting streams never appended to first, then the least
// recently appended ones, so that reads of many new names (a client that
// joins channels nobody sends to) do not evict history (MemoryConfig).
//
// # Concurrency
//
// Stores are safe for concurrent use. Memory holds a mutex per stream for
// the work of a call, and a store-wide one only for a lookup in its index
// of streams and for counting bytes and evicting; redishistory runs one
// script per call. A store whose calls never wait on I/O says so with
// Immediate (Memory does), so that a caller can skip the deadline it
// would give a network store.
//
// # Files
//
// history.go the contract (Position, Entry, Options, Gap, Result, Store),
// rules.go what implementations share (ErrInvalid, Check, NewEpoch,
// Classify, Start, Page), memory.go the in-memory store.
package history

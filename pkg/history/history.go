package history

import (
	"context"
	"time"
)

// Position is a place in a stream: the offset of the last entry seen, in
// the stream's epoch.
type Position struct {
	// Offset is the offset of the last entry seen; 0 is before the first
	// entry.
	Offset uint64
	// Epoch is the stream's epoch: it changes when the stream's history
	// was lost (e.g. Redis restarted without persistence, or the stream
	// expired). Short (at most EpochLen characters), URL-safe, random.
	Epoch string
}

// Entry is one message of a stream.
type Entry struct {
	// Offset is assigned by Append: 1, 2, 3, … per stream and epoch, the
	// same on every node.
	Offset uint64
	// Event is the event name, stored as is.
	Event string
	// Data is the payload, stored as is.
	Data string
	// ID is an id the sender gave (e.g. a QoS message id); optional,
	// stored as is.
	ID string
	// Time is assigned by Append (in Redis, by the server's clock).
	Time time.Time
}

// Options bound a stream's history; every call gets the stream's options.
type Options struct {
	// Size is how many entries are kept, at least 1.
	Size int
	// TTL is how long an entry is kept, more than 0; a stream without
	// appends for TTL is gone (its next use starts a new epoch).
	TTL time.Duration
}

// Gap says why a position could not be served in full.
type Gap string

// The reasons of a Gap.
const (
	// NoGap: every entry after the position was served (or follows).
	NoGap Gap = ""
	// Trimmed: entries after the position were dropped to keep Size.
	Trimmed Gap = "trimmed"
	// Expired: entries after the position were older than TTL.
	Expired Gap = "expired"
	// EpochChanged: the position is of another epoch (or beyond the
	// stream's last offset): the history it refers to is lost.
	EpochChanged Gap = "epoch"
)

// Result is what Since read.
type Result struct {
	// Entries are the entries after the position (or, with a Gap, from the
	// oldest kept), in offset order, at most limit.
	Entries []Entry
	// Top is the stream's last position now.
	Top Position
	// More says entries beyond limit follow: read again from the last one.
	More bool
	// Gap says why the position could not be served in full.
	Gap Gap
}

// Store keeps the recent entries of streams, per app. Safe for concurrent
// use.
type Store interface {
	// Append adds e to the stream (Offset and Time set by the store) and
	// returns its position. It starts the stream's epoch if it has none
	// (first use, or the stream was gone).
	Append(ctx context.Context, app, stream string, e Entry, o Options) (Position, error)
	// Since reads the entries after p (p.Offset 0 with the current epoch:
	// from the beginning). A p of another epoch (an empty one included)
	// gives Gap EpochChanged and the entries from the oldest kept. Like
	// Top, it starts the stream's epoch if it has none, so that Result.Top
	// is always a position that stays valid.
	Since(ctx context.Context, app, stream string, p Position, limit int, o Options) (Result, error)
	// Top returns the stream's current position, creating the stream's
	// epoch if it has none yet (so that a connection that joins an empty
	// stream holds a position that stays valid when the first entry
	// comes).
	Top(ctx context.Context, app, stream string, o Options) (Position, error)
}

// Immediate is implemented by a Store whose calls never wait for anything
// outside the process — no network, no disk, no other process — only, at
// most, for each other's short work in memory, as Memory's do. When
// Immediate returns true a caller need not bound the calls with a
// deadline of its own: they return at once whatever the context.
type Immediate interface {
	Immediate() bool
}

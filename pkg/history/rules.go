package history

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by the error of a call with bad arguments: an
// empty stream, Size < 1, TTL ≤ 0, limit < 1 (and, for Memory, an entry
// larger than the whole store).
var ErrInvalid = errors.New("history: invalid arguments")

// EpochLen is the length of the epochs NewEpoch makes.
const EpochLen = 8

// NewEpoch returns a new random epoch: EpochLen characters of the URL-safe
// base64 alphabet (48 random bits).
func NewEpoch() string {
	var b [EpochLen * 6 / 8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Check validates the arguments every call of a Store takes, returning an
// error wrapping ErrInvalid.
func Check(stream string, o Options) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	case o.Size < 1:
		return fmt.Errorf("%w: size %d, want at least 1", ErrInvalid, o.Size)
	case o.TTL <= 0:
		return fmt.Errorf("%w: ttl %v, want more than 0", ErrInvalid, o.TTL)
	}
	return nil
}

// CheckSince is Check for Since, which also takes a limit.
func CheckSince(stream string, limit int, o Options) error {
	if limit < 1 {
		return fmt.Errorf("%w: limit %d, want at least 1", ErrInvalid, limit)
	}
	return Check(stream, o)
}

// Classify is the rule that tells the Gap of a read after p from a stream
// whose last position is top, kept under Size size: first is the offset of
// the first entry kept after p.Offset (0 if none is kept).
//
// A p of another epoch, or beyond top's offset (the stream went back in
// time, e.g. Redis restored an older snapshot), is EpochChanged. Otherwise
// there is a gap when the entry right after p is not kept: Trimmed when
// it is more than size entries behind the top (Size alone would have
// dropped it), Expired when it is not (only its age can have).
func Classify(p, top Position, first uint64, size int) Gap {
	switch {
	case p.Epoch != top.Epoch || p.Offset > top.Offset:
		return EpochChanged
	case p.Offset == top.Offset || first == p.Offset+1:
		return NoGap
	case p.Offset+uint64(size) < top.Offset:
		return Trimmed
	}
	return Expired
}

// Start is the offset a read after p starts at in a stream whose last
// position is top: the one after p, or the oldest (1) when p is of another
// epoch or beyond top (see Classify).
func Start(p, top Position) uint64 {
	if p.Epoch != top.Epoch || p.Offset > top.Offset {
		return 1
	}
	return p.Offset + 1
}

// Page makes the Result of a read that found entries (up to limit+1 of
// them, so that More can be told) after p in a stream whose last position
// is top, under o.
func Page(p, top Position, entries []Entry, limit int, o Options) Result {
	var first uint64
	if len(entries) > 0 {
		first = entries[0].Offset
	}
	r := Result{Entries: entries, Top: top, Gap: Classify(p, top, first, o.Size)}
	if len(entries) > limit {
		r.Entries, r.More = entries[:limit], true
	}
	return r
}

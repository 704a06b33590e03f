package qos

import "errors"

var (
	// ErrClosed is returned by every method of a repository after Close.
	ErrClosed = errors.New("qos: repository closed")
	// ErrInvalidMessage is returned by Save for a message that cannot be
	// stored: no id, an id or event name with CR, LF or NUL, no recipient,
	// or (Memory) more bytes than the whole repository may hold.
	ErrInvalidMessage = errors.New("qos: invalid message")
	// ErrTooManyIDs is returned by Ack for more than MaxAckIDs ids; nothing
	// is acknowledged then.
	ErrTooManyIDs = errors.New("qos: too many ids in one acknowledgement")
)

// MaxAckIDs bounds the ids of one Ack call, repeated and empty ones
// included, so that one acknowledgement's work stays small.
const MaxAckIDs = 1000

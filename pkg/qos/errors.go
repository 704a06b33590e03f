package qos

import "errors"

var (
	// ErrClosed is returned by every method of a repository after Close.
	ErrClosed = errors.New("qos: repository closed")
	// ErrInvalidMessage is returned by Save for a message that cannot be
	// stored: no id, an id or event name with CR, LF or NUL, or no recipient.
	ErrInvalidMessage = errors.New("qos: invalid message")
)

package hub

import "errors"

var (
	// ErrClosed is returned by operations on a hub that was shut down.
	ErrClosed = errors.New("hub: closed")
	// ErrInvalidEvent is returned for an event that cannot be framed safely.
	ErrInvalidEvent = errors.New("hub: invalid event")
	// ErrNoTarget is returned for a send that addresses nobody.
	ErrNoTarget = errors.New("hub: target addresses nobody")
	// ErrUnknownConnection is returned for a connection id nobody holds.
	ErrUnknownConnection = errors.New("hub: unknown connection")
	// ErrQoSDisabled is returned for a QoS send on a hub without repository.
	ErrQoSDisabled = errors.New("hub: qos is not configured")
	// ErrStore is wrapped around failures of the QoS repository, so callers
	// can answer "service unavailable".
	ErrStore = errors.New("hub: qos store unavailable")
)

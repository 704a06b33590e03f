package hub

import (
	"errors"

	"github.com/pushd/pushd/pkg/qos"
)

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
	// ErrTooManyConnections is returned by Connect when the node already
	// holds Config.MaxConnections connections of the app; callers answer
	// 503 with Retry-After.
	ErrTooManyConnections = errors.New("hub: too many connections on this node")
	// ErrTooManyListeners is returned when a connection would listen to
	// more than Config.MaxListeners events.
	ErrTooManyListeners = errors.New("hub: too many listeners")
	// ErrTooManyChannels is returned when a connection would be in more
	// than Config.MaxChannels channels.
	ErrTooManyChannels = errors.New("hub: too many channels")
	// ErrInvalidName is returned for an event or listener name that is
	// empty, longer than Config.MaxNameLength or not safe to frame.
	ErrInvalidName = errors.New("hub: invalid name")
	// ErrTooManyIDs is returned by Ack for more than MaxAckIDs ids.
	ErrTooManyIDs = errors.New("hub: too many ids in one call")
	// ErrTokenExpired is returned by Connect for a user whose credential
	// has already expired (User.ExpiresAt); callers answer 401.
	ErrTokenExpired = errors.New("hub: credential expired")
)

// MaxAckIDs bounds the QoS ids one Ack call may carry: what one store call
// takes.
const MaxAckIDs = qos.MaxAckIDs

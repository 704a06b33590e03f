package hubhttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/hub"
)

// RetryAfter is the Retry-After, in seconds, of a 503 from a node that is
// full or closing.
const RetryAfter = "10"

// Status maps err, a hub error, to its HTTP status (the table in the package
// documentation).
func Status(err error) int {
	switch {
	case errors.Is(err, hub.ErrInvalidEvent), errors.Is(err, hub.ErrNoTarget),
		errors.Is(err, hub.ErrInvalidName), errors.Is(err, hub.ErrTooManyListeners), errors.Is(err, hub.ErrTooManyChannels):
		return http.StatusBadRequest
	case errors.Is(err, hub.ErrTokenExpired):
		return http.StatusUnauthorized
	case errors.Is(err, hub.ErrUnknownConnection), errors.Is(err, hub.ErrNoHistory):
		return http.StatusNotFound
	case errors.Is(err, hub.ErrTooManyIDs):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, hub.ErrQoSDisabled):
		return http.StatusNotImplemented
	case errors.Is(err, hub.ErrClosed), errors.Is(err, hub.ErrTooManyConnections), errors.Is(err, hub.ErrStore):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// WriteError answers err with Status(err) and its text, adding
// Retry-After when the node is full or closing.
func WriteError(w http.ResponseWriter, err error) {
	if errors.Is(err, hub.ErrTooManyConnections) || errors.Is(err, hub.ErrClosed) {
		w.Header().Set("Retry-After", RetryAfter)
	}
	httpx.WriteError(w, Status(err), err.Error())
}

package hubhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		retry  bool
	}{
		{hub.ErrInvalidEvent, http.StatusBadRequest, false},
		{hub.ErrNoTarget, http.StatusBadRequest, false},
		{hub.ErrInvalidName, http.StatusBadRequest, false},
		{hub.ErrTooManyListeners, http.StatusBadRequest, false},
		{hub.ErrTokenExpired, http.StatusUnauthorized, false},
		{hub.ErrUnknownConnection, http.StatusNotFound, false},
		{hub.ErrTooManyIDs, http.StatusRequestEntityTooLarge, false},
		{hub.ErrQoSDisabled, http.StatusNotImplemented, false},
		{hub.ErrClosed, http.StatusServiceUnavailable, true},
		{hub.ErrTooManyConnections, http.StatusServiceUnavailable, true},
		{hub.ErrStore, http.StatusServiceUnavailable, false},
		{context.DeadlineExceeded, http.StatusGatewayTimeout, false},
		{errors.New("peer n2: connection refused"), http.StatusInternalServerError, false},
		{context.Canceled, http.StatusInternalServerError, false},
	} {
		// Wrapped as the hub and the transports wrap them.
		err := fmt.Errorf("send: %w", c.err)
		if got := Status(err); got != c.status {
			t.Errorf("Status(%v) = %d, want %d", err, got, c.status)
		}
		w := httptest.NewRecorder()
		WriteError(w, err)
		var e struct{ Error string }
		if w.Code != c.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != err.Error() {
			t.Errorf("WriteError(%v): %d %s", err, w.Code, w.Body)
		}
		if got := w.Header().Get("Retry-After"); (got == RetryAfter) != c.retry || (got == "") == c.retry {
			t.Errorf("WriteError(%v): Retry-After %q", err, got)
		}
	}
}

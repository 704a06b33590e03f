package admin

import (
	"context"
	"errors"
	"mime"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
)

// maxActionBody bounds the JSON body of an action.
const maxActionBody = 64 << 10

// DefaultTestEvent is the event name of a test send that names none.
const DefaultTestEvent = "admin-test"

// Recipient addresses an action: exactly one of a user (all its
// connections, on every node) or one connection.
type Recipient struct {
	App          string `json:"app"`
	UserID       string `json:"userId,omitempty"`
	ConnectionID string `json:"connectionId,omitempty"`
}

// target turns r into a hub target, or says what is wrong with it.
func (r Recipient) target() (hub.Target, error) {
	switch {
	case (r.UserID == "") == (r.ConnectionID == ""):
		return hub.Target{}, errors.New("name exactly one of userId and connectionId")
	case r.UserID != "":
		return hub.Target{UserIDs: []string{r.UserID}}, nil
	}
	return hub.Target{ConnectionIDs: []string{r.ConnectionID}}, nil
}

// SendRequest is the body of POST /admin/api/send.
type SendRequest struct {
	Recipient
	// Event is the event name; default DefaultTestEvent.
	Event string `json:"event,omitempty"`
	// Data is the text the browser gets as event.data.
	Data string `json:"data"`
}

// SendResponse is the answer of POST /admin/api/send.
type SendResponse struct {
	// Delivered counts the connections, cluster-wide, the event was
	// queued to: 0 for a user who is not online.
	Delivered int `json:"delivered"`
}

// KickRequest is the body of POST /admin/api/kick.
type KickRequest struct {
	Recipient
}

// KickResponse is the answer of POST /admin/api/kick.
type KickResponse struct {
	// Closed counts the connections closed, cluster-wide.
	Closed int `json:"closed"`
}

// send sends a test event (without QoS) to a user or a connection.
func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	hb, t, ok := h.readAction(w, r, &req, &req.Recipient)
	if !ok {
		return
	}
	if req.Event == "" {
		req.Event = DefaultTestEvent
	}
	ev := hub.Event{Name: req.Event, Data: req.Data}
	if err := ev.Validate(); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	n, err := hb.Send(ctx, t, ev)
	if err != nil {
		hubhttp.WriteError(w, err)
		return
	}
	h.logAction(r, "send", req.Recipient).Str("event", ev.Name).Int("delivered", n).Msg("admin sent a test event")
	httpx.WriteJSON(w, http.StatusOK, SendResponse{Delivered: n})
}

// kick closes a user's connections or one connection, telling the clients
// (connect-close, reason kicked).
func (h *Handler) kick(w http.ResponseWriter, r *http.Request) {
	var req KickRequest
	hb, t, ok := h.readAction(w, r, &req, &req.Recipient)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	n, err := hb.Disconnect(ctx, t, hub.ReasonKicked)
	if err != nil {
		hubhttp.WriteError(w, err)
		return
	}
	h.logAction(r, "kick", req.Recipient).Int("closed", n).Msg("admin kicked")
	httpx.WriteJSON(w, http.StatusOK, KickResponse{Closed: n})
}

// readAction decodes an action's JSON body into body (whose recipient is
// rcpt) and resolves its app and target, or answers 400, 404 or 415 and
// reports false.
func (h *Handler) readAction(w http.ResponseWriter, r *http.Request, body any, rcpt *Recipient) (*hub.Hub, hub.Target, bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		httpx.WriteError(w, http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
		return nil, hub.Target{}, false
	}
	if !httpx.ReadJSON(w, r, body, maxActionBody, true) {
		return nil, hub.Target{}, false
	}
	hb := h.hub(w, rcpt.App)
	if hb == nil {
		return nil, hub.Target{}, false
	}
	t, err := rcpt.target()
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return nil, hub.Target{}, false
	}
	return hb, t, true
}

// logAction starts the audit line of an action.
func (h *Handler) logAction(r *http.Request, action string, rcpt Recipient) *zerolog.Event {
	e := h.log.Info().Str("action", action).Str("app", rcpt.App).Str("remote", r.RemoteAddr)
	if rcpt.UserID != "" {
		return e.Str("user", rcpt.UserID)
	}
	return e.Str("conn", rcpt.ConnectionID)
}

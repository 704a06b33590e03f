package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
)

// connectionID accepts the seed client's connection id as a JSON string or
// number.
type connectionID string

// UnmarshalJSON implements json.Unmarshaler.
func (c *connectionID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = connectionID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("connectionId must be a string or a number")
	}
	*c = connectionID(n.String())
	return nil
}

// readJSON reads the JSON body of a call, at most maxCallBody bytes.
func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return httpx.ReadJSON(w, r, v, min(h.cfg.MaxBody, maxCallBody), false)
}

// hubError answers a hub error with its status (hubhttp.Status); an
// unknown connection keeps the seed's text.
func hubError(w http.ResponseWriter, err error) {
	if errors.Is(err, hub.ErrUnknownConnection) {
		WriteError(w, http.StatusNotFound, "connectionId not exist")
		return
	}
	hubhttp.WriteError(w, err)
}

func (h *Handler) serveListener(w http.ResponseWriter, r *http.Request, user hub.User, add bool) {
	var body struct {
		ConnectionID connectionID `json:"connectionId"`
		Listener     []string     `json:"listener"`
	}
	if !h.readJSON(w, r, &body) {
		return
	}
	if body.ConnectionID == "" || len(body.Listener) == 0 {
		// The seed answers an incomplete body this way.
		h.writeOK(w, map[string]any{"listener": nil})
		return
	}
	list, err := h.hub.ChangeListeners(r.Context(), string(body.ConnectionID), user, add, body.Listener)
	if err != nil {
		hubError(w, err)
		return
	}
	h.writeOK(w, map[string]any{"listener": list})
}

// serveAck acknowledges QoS messages: at most hub.MaxAckIDs ids, in a
// body of at most 64 KiB (1 000 ids of pushd's 24 characters take 27 KB).
func (h *Handler) serveAck(w http.ResponseWriter, r *http.Request, user hub.User) {
	var body struct {
		ConnectionID connectionID `json:"connectionId"`
		IDs          []string     `json:"ids"`
	}
	if !h.readJSON(w, r, &body) {
		return
	}
	if body.ConnectionID == "" {
		WriteError(w, http.StatusBadRequest, "connectionId is required")
		return
	}
	if len(body.IDs) > hub.MaxAckIDs {
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d ids in one ack", hub.MaxAckIDs))
		return
	}
	n, err := h.hub.Ack(r.Context(), string(body.ConnectionID), user, body.IDs)
	if err != nil {
		hubError(w, err)
		return
	}
	h.writeOK(w, map[string]any{"acked": n})
}

// serveDisconnect closes a connection for whoever presents its id: ids are
// unguessable and shown to nobody but their owner, and the beacon that
// calls this carries no credentials but cookies. Its body is a small
// form, read within a short deadline.
func (h *Handler) serveDisconnect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, min(h.cfg.MaxBody, maxBeaconBody))
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooBig.Limit))
			return
		}
		WriteError(w, http.StatusBadRequest, "malformed form: "+err.Error())
		return
	}
	id := r.Form.Get("connectionId")
	if id == "" {
		h.writeOK(w, map[string]any{"count": 0})
		return
	}
	duration, err1 := optionalInt(r.Form.Get("duration"))
	session, err2 := optionalInt(r.Form.Get("sessionDuration"))
	if err := errors.Join(err1, err2); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	n, err := h.hub.DisconnectClient(r.Context(), id, duration, session)
	if err != nil && n == 0 {
		h.writeOK(w, map[string]any{"count": 0, "timeout": errors.Is(err, context.DeadlineExceeded)})
		return
	}
	h.writeOK(w, map[string]any{"count": n})
}

func optionalInt(s string) (*int64, error) {
	if s == "" || s == "undefined" || s == "null" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("not a number: %q", s)
	}
	n := int64(f)
	return &n, nil
}

// Call describes a message or upload call made by a browser.
type Call struct {
	// App is the app's name.
	App string
	// Path is the {path} segment of message/{path}.do or upload/{path}.do.
	Path string
	// Upload is set for upload/{path}.do.
	Upload bool
	// User is the authenticated caller.
	User hub.User
	// ConnectionID is the caller's connection, verified to be its own, or
	// empty when the call named none.
	ConnectionID string
}

// UpstreamHandler answers message and upload calls: in the daemon by
// forwarding them to the app's backend, in a Go program with its own code.
type UpstreamHandler interface {
	ServeUpstream(w http.ResponseWriter, r *http.Request, call Call)
}

// UpstreamFunc adapts a function to UpstreamHandler.
type UpstreamFunc func(w http.ResponseWriter, r *http.Request, call Call)

// ServeUpstream calls f.
func (f UpstreamFunc) ServeUpstream(w http.ResponseWriter, r *http.Request, call Call) { f(w, r, call) }

// errForeignConnection is the answer to a call naming a connection that
// exists but belongs to another identity. The status stays the seed's 404
// (the wire test holds clients to it); the text tells the user what to
// fix. Connection ids are unguessable, so it tells an attacker nothing
// they could use.
const errForeignConnection = "connectionId belongs to another user: the user id, tenant id or access token of this request is not the one the connection was opened with (send the query of connect)"

// refuseForeign answers a call on another user's connection.
func refuseForeign(w http.ResponseWriter, r *http.Request) {
	refuse(w, r, http.StatusNotFound, errForeignConnection)
}

// serveUpstream hands a message or upload call to the UpstreamHandler,
// with the credential parameters removed from its URL.
func (h *Handler) serveUpstream(w http.ResponseWriter, r *http.Request, user hub.User, path string, upload bool) {
	if !httpx.ValidPath(path) {
		refuse(w, r, http.StatusBadRequest, "invalid path segment")
		return
	}
	call := Call{App: h.hub.App(), Path: path, Upload: upload, User: user}
	if id := r.URL.Query().Get("connectionId"); id != "" {
		if c := h.hub.Conn(id); c != nil {
			if !user.MayActFor(c.User()) {
				refuseForeign(w, r)
				return
			}
			c.CountRequest(upload)
		} else {
			owner, err := h.hub.Owner(r.Context(), id)
			if err != nil {
				hubError(w, err)
				return
			}
			if !user.MayActFor(owner) {
				refuseForeign(w, r)
				return
			}
		}
		call.ConnectionID = id
	}
	h.cfg.Upstream.ServeUpstream(w, h.secrets.forUpstream(r), call)
}

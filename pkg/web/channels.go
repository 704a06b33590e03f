package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/hub"
)

// ChannelPolicy decides which channels a browser may join:
// *channels.Policy. Authorize returns nil when u may join every one of
// names, else an error wrapping channels.ErrForbidden (403),
// channels.ErrInvalidName (400) or channels.ErrUnavailable (503).
type ChannelPolicy interface {
	Authorize(ctx context.Context, app string, u hub.User, connID string, names []string) error
}

// connectChannels returns the channels a new connection joins: the exact
// names its identity grants, and those the browser asks for with channel=
// (the seed's single channel) and channels=a,b once the policy allowed
// them.
func (h *Handler) connectChannels(r *http.Request, u hub.User, p map[string]string) ([]string, error) {
	var asked []string
	if ch := p["channel"]; ch != "" {
		asked = append(asked, ch)
	}
	for _, ch := range strings.Split(p["channels"], ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			asked = append(asked, ch)
		}
	}
	joined := grantedNames(u)
	if asked = withoutGranted(asked, joined); len(asked) > 0 {
		if err := h.authorizeChannels(r.Context(), u, "", asked); err != nil {
			return nil, err
		}
	}
	return append(joined, asked...), nil
}

// grantedNames are the exact channel names u's identity grants (patterns
// only authorize joins).
func grantedNames(u hub.User) []string {
	var names []string
	for _, g := range u.Channels {
		if !strings.ContainsAny(g, "*{") {
			names = append(names, g)
		}
	}
	return names
}

// withoutGranted drops the names the identity grants exactly: they need
// no policy.
func withoutGranted(asked, granted []string) []string {
	return slices.DeleteFunc(asked, func(ch string) bool { return slices.Contains(granted, ch) })
}

// authorizeChannels asks the policy; without one only granted names pass.
func (h *Handler) authorizeChannels(ctx context.Context, u hub.User, connID string, names []string) error {
	if h.cfg.Channels == nil {
		return channelsForbidden(names[0])
	}
	return h.cfg.Channels.Authorize(ctx, h.hub.App(), u, connID, names)
}

// channelsForbidden is the refusal of an app without a channel policy.
func channelsForbidden(name string) error {
	return &forbiddenChannel{name: name}
}

type forbiddenChannel struct{ name string }

func (e *forbiddenChannel) Error() string {
	return "channels: channel " + e.name + " may not be joined from the browser (the app has no channel namespaces)"
}

func (e *forbiddenChannel) Unwrap() error { return channels.ErrForbidden }

// channelError answers a refused join: 403 when the policy says no, 400
// for a bad name or too many channels, 503 when the policy could not ask
// the backend, else as the hub's errors.
func channelError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, channels.ErrForbidden):
		WriteError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, channels.ErrInvalidName):
		WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, channels.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, err.Error())
	default:
		hubError(w, err)
	}
}

// serveChannels answers subscribe.do (join) and unsubscribe.do: the body
// names the caller's connection and the channels; joins are authorized by
// the policy, leaving is always allowed. The answer lists the
// connection's channels afterwards.
func (h *Handler) serveChannels(w http.ResponseWriter, r *http.Request, user hub.User, join bool) {
	var body struct {
		ConnectionID connectionID `json:"connectionId"`
		Channels     []string     `json:"channels"`
	}
	if !h.readJSON(w, r, &body) {
		return
	}
	if body.ConnectionID == "" || len(body.Channels) == 0 {
		WriteError(w, http.StatusBadRequest, "connectionId and channels are required")
		return
	}
	if join {
		if asked := withoutGranted(slices.Clone(body.Channels), grantedNames(user)); len(asked) > 0 {
			if err := h.authorizeChannels(r.Context(), user, string(body.ConnectionID), asked); err != nil {
				channelError(w, err)
				return
			}
		}
	}
	list, err := h.hub.ChangeChannels(r.Context(), string(body.ConnectionID), user, join, body.Channels)
	if err != nil {
		hubError(w, err)
		return
	}
	if list == nil {
		list = []string{}
	}
	h.writeOK(w, map[string]any{"channels": list})
}

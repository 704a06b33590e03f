package web

import (
	"net/http"
	"slices"
	"strings"
)

// foreign reports whether r, a call that acts, comes from a page of
// another origin than this server's and the app's CORS origins: its
// Origin names such an origin, or, without Origin, Sec-Fetch-Site says it
// is not a same-origin or user-initiated request. Requests with neither
// header (curl, backends, old browsers on a same-origin GET) are not
// foreign.
func (h *Handler) foreign(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return !sameOrigin(o, requestDomain(r)) && !slices.Contains(h.cfg.CORSOrigins, o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// sameOrigin compares two scheme://host[:port] origins, ignoring case
// and default ports.
func sameOrigin(a, b string) bool {
	return normalOrigin(a) == normalOrigin(b)
}

func normalOrigin(o string) string {
	o = strings.ToLower(strings.TrimSuffix(o, "/"))
	switch {
	case strings.HasPrefix(o, "http://"):
		return strings.TrimSuffix(o, ":80")
	case strings.HasPrefix(o, "https://"):
		return strings.TrimSuffix(o, ":443")
	}
	return o
}

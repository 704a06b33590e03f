package web

import (
	"fmt"
	"net/http"
)

// newOriginCheck builds an app's cross-origin protection: net/http's
// CrossOriginProtection, which refuses a request whose Sec-Fetch-Site is
// neither same-origin nor none, or, from browsers that do not send it,
// whose Origin names another host than the request's Host; the app's
// CORS origins are trusted.
func newOriginCheck(corsOrigins []string) (*http.CrossOriginProtection, error) {
	c := http.NewCrossOriginProtection()
	for _, o := range corsOrigins {
		if err := c.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: Config.CORSOrigins: %w", err)
		}
	}
	return c, nil
}

// foreign reports whether r, a call that acts, comes from a page of
// another origin than this server's and the app's CORS origins. Requests
// with neither Origin nor Sec-Fetch-Site (curl, backends) are not foreign.
// Every call counts as acting, the connect too although it may be a GET:
// it registers a connection in the browser's name.
func (h *Handler) foreign(r *http.Request) bool {
	if r.Method != http.MethodPost {
		acting := r.WithContext(r.Context())
		acting.Method = http.MethodPost
		r = acting
	}
	return h.origins.Check(r) != nil
}

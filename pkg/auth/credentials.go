package auth

import "net/http"

// Credentials names the places of a request an authenticator reads secrets
// from, so that callers keep them out of telemetry, logs and forwarded
// calls. Header names are canonical (http.CanonicalHeaderKey).
type Credentials struct {
	// Query lists query parameter (and connect body) names.
	Query []string
	// Headers lists header names.
	Headers []string
	// Cookies lists cookie names.
	Cookies []string
}

// Credentials returns where j looks for its token.
func (j *JWT) Credentials() Credentials {
	var c Credentials
	for _, s := range j.sources {
		switch s.kind {
		case SourceBearer:
			c.Headers = append(c.Headers, "Authorization")
		case SourceCookie:
			c.Cookies = append(c.Cookies, s.name)
		case SourceQuery:
			c.Query = append(c.Query, s.name)
		case SourceHeader:
			c.Headers = append(c.Headers, http.CanonicalHeaderKey(s.name))
		}
	}
	return c
}

// Credentials returns the headers and query parameters w passes on to its
// backend: they identify the browser and are treated as secrets.
func (w *Webhook) Credentials() Credentials {
	return Credentials{
		Query:   append([]string(nil), w.cfg.QueryParams...),
		Headers: append([]string(nil), w.cfg.Headers...),
	}
}

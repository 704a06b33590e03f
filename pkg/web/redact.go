package web

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/pushd/pushd/pkg/auth"
)

// CredentialSource is implemented by authenticators that read secrets from
// named places of a request (auth.JWT, auth.Webhook). A Handler keeps
// those places out of telemetry, logs and the request it hands to the
// UpstreamHandler.
type CredentialSource interface {
	Credentials() auth.Credentials
}

// Bounds of the telemetry kept per connection (ClientInfo.Params and
// ClientInfo.Headers): a value longer than maxKeptValue is dropped, and
// so is every value that would take the total of names and values over
// maxKeptBytes. The number of entries is bounded by the allowlists.
const (
	maxKeptValue = 1 << 10
	maxKeptBytes = 8 << 10
)

// telemetryParams are the connect parameters kept in ClientInfo.Params:
// what the seed's sse.js and pushd's own send about themselves.
var telemetryParams = []string{
	"sessionDuration", "keepaliveTime", "clientId", "clientVersion", "screen", "accessTime", "listeners",
	"useWindowEventBus", "locationHref", "clientImportModuleTime", "clientInstanceTime", "clientInstanceId",
	"jsHeapSizeLimit", "totalJSHeapSize", "usedJSHeapSize", "ack", "lastEventId", "channel",
}

// ownParams are the telemetry parameters whose values differ from client
// to client (ids, times, sizes): kept as copies, not interned, as they
// would only fill the interner's table.
var ownParams = map[string]bool{
	"sessionDuration": true, "clientId": true, "accessTime": true, "clientImportModuleTime": true,
	"clientInstanceTime": true, "clientInstanceId": true, "jsHeapSizeLimit": true, "totalJSHeapSize": true,
	"usedJSHeapSize": true, "lastEventId": true,
}

// telemetryHeaders are the request headers kept in ClientInfo.Headers.
var telemetryHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Last-Event-Id", "Origin", "Referer",
	"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
	"User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
}

// secretWords are the name parts that make a header or parameter look like
// a credential wherever they occur in its name.
var secretWords = []string{"token", "secret", "passw", "passphrase", "authoriz", "authentic", "cookie",
	"session", "jwt", "credential", "signature", "bearer", "csrf", "xsrf", "apikey", "privatekey"}

// secretTerms make a name look like a credential when one of its words
// (split at non-alphanumerics and lower-to-upper case changes) equals
// one, or, for "key", ends with it (apiKey, X-Api-Key, accesskey).
var secretTerms = []string{"auth", "pass", "pwd", "sid", "sig", "key", "keys"}

// looksSecret reports whether a header or parameter name looks like it
// carries a credential.
func looksSecret(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	for _, word := range nameWords(name) {
		for _, t := range secretTerms {
			if word == t || t == "key" && strings.HasSuffix(word, "key") {
				return true
			}
		}
	}
	return false
}

// nameWords splits a name like "X-Api-Key" or "accessKey" into lower-case
// words.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	var prev rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, c := range name {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case unicode.IsUpper(c) && unicode.IsLower(prev):
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
		prev = c
	}
	flush()
	return words
}

// secrets is what a Handler treats as credentials: the authenticator's
// sources and Config.Credentials, names compared case-insensitively.
type secrets struct {
	query   map[string]bool
	headers map[string]bool
	cookies []string
}

func newSecrets(lists ...auth.Credentials) secrets {
	s := secrets{query: map[string]bool{}, headers: map[string]bool{"Authorization": true, "Cookie": true}}
	for _, c := range lists {
		for _, q := range c.Query {
			s.query[strings.ToLower(q)] = true
		}
		for _, hd := range c.Headers {
			s.headers[http.CanonicalHeaderKey(hd)] = true
		}
		s.cookies = append(s.cookies, c.Cookies...)
	}
	return s
}

// param reports whether a query or connect parameter must not be kept,
// logged or forwarded.
func (s secrets) param(name string) bool { return s.query[strings.ToLower(name)] || looksSecret(name) }

// header reports whether a header must not be kept or logged.
func (s secrets) header(name string) bool {
	return s.headers[http.CanonicalHeaderKey(name)] || looksSecret(name)
}

// cleanQuery removes the credential parameters from a raw query.
func (s secrets) cleanQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		// Keep only what parses; an unparsable pair could hide a secret.
		q = cleanParsable(raw)
	}
	for k := range q {
		if s.param(k) {
			delete(q, k)
		}
	}
	return q.Encode()
}

// cleanParsable keeps the pairs of raw that parse.
func cleanParsable(raw string) url.Values {
	q := url.Values{}
	for pair := range strings.SplitSeq(raw, "&") {
		if p, err := url.ParseQuery(pair); err == nil {
			for k, v := range p {
				q[k] = append(q[k], v...)
			}
		}
	}
	return q
}

// forUpstream returns r with the credential parameters removed from its
// URL, for the UpstreamHandler (the daemon forwards the query to the
// backend and logs the URL it calls).
func (s secrets) forUpstream(r *http.Request) *http.Request {
	clean := s.cleanQuery(r.URL.RawQuery)
	if clean == r.URL.RawQuery {
		return r
	}
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = clean
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2
}

// values returns the secret values r carries, for redact: those of the
// credential parameters and headers, bearer tokens and the named cookies.
func (s secrets) values(r *http.Request) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 4 { // shorter values would redact ordinary text
			out = append(out, v, url.QueryEscape(v))
		}
	}
	for k, vs := range r.URL.Query() {
		if s.param(k) {
			for _, v := range vs {
				add(v)
			}
		}
	}
	for k, vs := range r.Header {
		if k == "Cookie" || !s.header(k) {
			continue
		}
		for _, v := range vs {
			add(v)
			if scheme, tok, ok := strings.Cut(v, " "); ok && scheme != "" {
				add(strings.TrimSpace(tok))
			}
		}
	}
	for _, name := range s.cookies {
		if c, err := r.Cookie(name); err == nil {
			add(c.Value)
		}
	}
	return out
}

// redact replaces every secret value of r in text, for log lines and
// error answers that quote a URL or a header (a webhook's error names the
// URL it called, with the browser's query).
func (s secrets) redact(r *http.Request, text string) string {
	vals := s.values(r)
	if len(vals) == 0 {
		return text
	}
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, "[redacted]")
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// withoutQuery returns a URL without userinfo, query and fragment, for
// the kept locationHref and Referer: page URLs carry tokens (OAuth
// redirects, magic links).
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// kept collects bounded telemetry.
type kept struct{ left int }

// fits reports whether v may be kept under k, and takes both from the
// budget if so.
func (b *kept) fits(k, v string) bool {
	if len(v) > maxKeptValue || len(k)+len(v) > b.left {
		return false
	}
	b.left -= len(k) + len(v)
	return true
}

// telemetry returns the parameters and headers a connection keeps: those
// of the allowlists that are no credential, bounded in size, nil when
// there are none. The values are copies, shared's unless ownParams, and
// the headers map is shared's too, one for the connections that sent the
// same headers: the maps are read-only.
func (s secrets) telemetry(r *http.Request, params map[string]string, shared *interner) (p, hd map[string]string) {
	b := kept{left: maxKeptBytes}
	for _, k := range telemetryParams {
		v, ok := params[k]
		if !ok || s.query[strings.ToLower(k)] {
			continue
		}
		if k == "locationHref" {
			v = withoutQuery(v)
		}
		if b.fits(k, v) {
			if p == nil {
				// No size hint: a map sized for every allowlisted name
				// costs about a kilobyte when the client sends a few.
				p = make(map[string]string)
			}
			if ownParams[k] {
				p[k] = strings.Clone(v)
			} else {
				p[k] = shared.get(v)
			}
		}
	}
	var pairs []string
	for _, k := range telemetryHeaders {
		v := r.Header.Get(k)
		if v == "" || s.headers[k] {
			continue
		}
		if k == "Referer" {
			v = withoutQuery(v)
		}
		if b.fits(k, v) {
			pairs = append(pairs, k, v)
		}
	}
	return p, shared.fields(pairs)
}

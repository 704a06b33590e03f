package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/signature"
)

// Headers set on forwarded requests: the identity and the signature.
const (
	HeaderApp           = "X-Pushd-App"
	HeaderUserID        = "X-Pushd-User-Id"
	HeaderTenantID      = "X-Pushd-Tenant-Id"
	HeaderConnectionID  = "X-Pushd-Connection-Id"
	HeaderTimestamp     = signature.HeaderTimestamp
	HeaderNonce         = signature.HeaderNonce
	HeaderContentSHA256 = signature.HeaderContentSHA256
	HeaderSignature     = signature.HeaderSignature
)

// Kinds of forwarded calls.
const (
	KindMessage = "message"
	KindUpload  = "upload"
)

// Defaults of Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 10 << 20
)

// Config configures New.
type Config struct {
	// URL is the backend's base URL, e.g. "https://backend.internal/pushd";
	// calls go to URL + "/message/{path}" and URL + "/upload/{path}".
	// Required; absolute http(s), no query or fragment.
	URL string
	// Secret signs each call (see the package documentation). Default
	// empty: calls are sent without X-Pushd-Nonce and X-Pushd-Signature,
	// and the backend must trust the network instead.
	Secret string
	// Timeout bounds the whole exchange with the backend (sending the
	// body, waiting for and reading the answer), which starts once the
	// browser's body has been read. Default 10 s.
	Timeout time.Duration
	// MaxBody is the largest request body forwarded, in bytes. Default
	// 10 MiB; -1 means unlimited.
	MaxBody int64
	// SpoolDir holds the temporary files of bodies larger than 64 KiB
	// while they are hashed before sending. Default os.TempDir().
	SpoolDir string
	// Client makes the calls. Default: a client that does not follow
	// redirects (the answer is copied back as it is).
	Client *http.Client
	// Logger receives failures. The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock for the timestamp. Default time.Now.
	Now func() time.Time
}

// Identity is who makes a forwarded call, as established by pushd.
type Identity struct {
	// App is the app's name (X-Pushd-App).
	App string
	// UserID is the authenticated user's id (X-Pushd-User-Id); may be empty.
	UserID string
	// TenantID is the user's tenant (X-Pushd-Tenant-Id); may be empty.
	TenantID string
	// ConnectionID is the caller's verified SSE connection
	// (X-Pushd-Connection-Id, and connectionId in the query); may be empty.
	ConnectionID string
}

// Forwarder forwards browser calls to one backend. Build it with New.
type Forwarder struct {
	base   string
	cfg    Config
	client *http.Client
	log    zerolog.Logger
}

// New validates cfg and returns a Forwarder.
func New(cfg Config) (*Forwarder, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream: URL %q must not have a query or fragment", cfg.URL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("upstream: negative Timeout")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxBody < -1 {
		return nil, errors.New("upstream: MaxBody must be positive or -1")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Forwarder{base: strings.TrimRight(cfg.URL, "/"), cfg: cfg, client: cfg.Client}
	if f.client == nil {
		f.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	f.log = cfg.Logger.With().Str("component", "upstream").Logger()
	return f, nil
}

// ValidPath reports whether path is one safe URL path segment: 1 to 200
// characters from A-Z a-z 0-9 - _ . ~, and not "." or "..". Anything
// percent-encoded, slashes and backslashes are refused. pkg/web holds the
// {path} of message and upload calls to the same rule.
func ValidPath(path string) bool { return httpx.ValidPath(path) }

// Forward sends r's body to the backend at URL/kind/path on behalf of id
// and writes the backend's answer to w. kind is KindMessage or KindUpload;
// path is the {path} of the browser URL, which must satisfy ValidPath. The
// request's context cancels the call.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, kind, path string, id Identity) {
	if kind != KindMessage && kind != KindUpload {
		httpx.WriteError(w, http.StatusInternalServerError, "unknown call kind")
		return
	}
	if !ValidPath(path) {
		httpx.WriteError(w, http.StatusBadRequest, "invalid path")
		return
	}
	if !headerSafe(id.App, id.UserID, id.TenantID, id.ConnectionID) {
		httpx.WriteError(w, http.StatusBadRequest, "identity cannot be sent in headers")
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "invalid query string")
		return
	}
	if f.cfg.MaxBody >= 0 && r.ContentLength > f.cfg.MaxBody {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, tooLarge(f.cfg.MaxBody))
		return
	}
	query.Del("connectionId")
	if id.ConnectionID != "" {
		query.Set("connectionId", id.ConnectionID)
	}
	target := f.base + "/" + kind + "/" + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}

	body, err := readSpool(http.MaxBytesReader(w, r.Body, f.maxBody()), f.cfg.SpoolDir)
	if err != nil {
		f.bodyFailed(w, r, err)
		return
	}
	defer body.Close()

	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body.reader())
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "cannot build backend request")
		return
	}
	req.ContentLength = body.size
	if err := f.setHeaders(req, r, id, body.sha256); err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "cannot sign backend request")
		return
	}

	resp, err := f.client.Do(req)
	if err != nil {
		f.fail(w, r, ctx, target, err)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		// The status is out; all we can do is stop and say why.
		f.log.Warn().Err(err).Str("url", target).Msg("copying backend answer failed")
	}
}

func (f *Forwarder) setHeaders(req *http.Request, r *http.Request, id Identity, bodySHA256 string) error {
	h := req.Header
	if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	for _, k := range []string{"Accept", "Accept-Language", "User-Agent"} {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			host = strings.Join(prior, ", ") + ", " + host
		}
		h.Set("X-Forwarded-For", host)
	}
	h.Set(HeaderApp, id.App)
	h.Set(HeaderUserID, id.UserID)
	h.Set(HeaderTenantID, id.TenantID)
	h.Set(HeaderConnectionID, id.ConnectionID)
	if f.cfg.Secret == "" {
		h.Set(HeaderTimestamp, signature.Timestamp(f.cfg.Now()))
		h.Set(HeaderContentSHA256, bodySHA256)
		return nil
	}
	return signature.SignRequest(req, f.cfg.Secret, bodySHA256, f.cfg.Now(), identityLines(id)...)
}

// identityLines are the extra signed lines: the identity headers' values.
func identityLines(id Identity) []string {
	return []string{id.App, id.UserID, id.TenantID, id.ConnectionID}
}

func (f *Forwarder) maxBody() int64 {
	if f.cfg.MaxBody < 0 {
		return math.MaxInt64
	}
	return f.cfg.MaxBody
}

// bodyFailed answers for a browser body that could not be read or kept.
func (f *Forwarder) bodyFailed(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	var spoolErr *spoolError
	switch {
	case errors.As(err, &tooBig):
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, tooLarge(tooBig.Limit))
	case errors.As(err, &spoolErr):
		f.log.Error().Err(err).Msg("cannot buffer request body")
		httpx.WriteError(w, http.StatusInternalServerError, "cannot buffer request body")
	case r.Context().Err() != nil:
		f.log.Debug().Err(err).Msg("browser gave up while sending the body")
	default:
		httpx.WriteError(w, http.StatusBadRequest, "cannot read request body")
	}
}

// fail answers for a call that got no response from the backend.
func (f *Forwarder) fail(w http.ResponseWriter, r *http.Request, ctx context.Context, target string, err error) {
	var netErr net.Error
	switch {
	case r.Context().Err() != nil:
		// The browser went away; nobody reads an answer.
		f.log.Debug().Err(err).Str("url", target).Msg("browser gave up before the backend answered")
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		f.log.Warn().Err(err).Str("url", target).Msg("backend timed out")
		httpx.WriteError(w, http.StatusGatewayTimeout, "backend timed out")
	default:
		f.log.Warn().Err(err).Str("url", target).Msg("backend unreachable")
		httpx.WriteError(w, http.StatusBadGateway, "backend unreachable")
	}
}

// headerSafe reports whether the values can be header values: no control
// characters other than tab (which also keeps the signed lines unambiguous).
func headerSafe(values ...string) bool {
	for _, v := range values {
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
	}
	return true
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("request body larger than %d bytes", limit)
}

// Verify checks a request pushd forwarded, for backends written in Go,
// with the scheme of package signature: the signature (secret) over the
// method, path, query, body hash, timestamp, nonce and identity headers;
// the timestamp within opts.Window (default 60 s) of opts.Now; with
// opts.Replay (share one signature.ReplayCache between all requests) that
// the nonce is new. Only then it reads the body, at most opts.MaxBody
// (default 10 MiB) into memory, checks its hash and puts it back in r.Body
// for the handler. On success it returns the identity; errors wrap
// signature.ErrMissing, ErrInvalid, ErrExpired, ErrNoSecret, ErrReplay,
// ErrReplayCacheFull or ErrTooLarge, or the read error.
func Verify(r *http.Request, secret string, opts signature.Options) (Identity, error) {
	id := Identity{
		App:          r.Header.Get(HeaderApp),
		UserID:       r.Header.Get(HeaderUserID),
		TenantID:     r.Header.Get(HeaderTenantID),
		ConnectionID: r.Header.Get(HeaderConnectionID),
	}
	body, err := signature.VerifyRequest(r, secret, opts, identityLines(id)...)
	if err != nil {
		return Identity{}, fmt.Errorf("upstream: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return id, nil
}

package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	sseclient "github.com/pushd/pushd/clients/js"
	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
)

// Config configures a Handler.
type Config struct {
	// Hub is the app's hub. Required.
	Hub *hub.Hub
	// Path is the app's base path, e.g. "/sse/demo". Required.
	Path string
	// Auth authenticates every request but the script and disconnect.do,
	// before any body is read: an error wrapping auth.ErrUnavailable gives
	// 503, any other 401. When it implements CredentialSource, the places
	// it reads secrets from are kept out of telemetry, logs and the
	// request handed to Upstream. Required.
	Auth auth.Authenticator
	// Credentials names more places of a request that carry secrets,
	// treated like those of Auth. Headers and parameters whose names look
	// like credentials (token, secret, password, key, session, …) are
	// treated so anyway. Default none.
	Credentials auth.Credentials
	// Upstream answers message/{path}.do and upload/{path}.do. Default:
	// Echo, which answers with what it received.
	Upstream UpstreamHandler
	// EnableJSON turns on users.json, connections.json and
	// repositoryMessages.json. Default false: they expose other users'
	// connections.
	EnableJSON bool
	// MaxBody bounds the bodies of message and upload calls read by the
	// echo upstream, and, up to 64 KiB, those of the other calls (connect,
	// add/removeListener, ack; disconnect.do takes at most 4 KiB). Default
	// 10 MiB.
	MaxBody int64
	// ReadTimeout bounds reading the request body of a message or upload
	// call; the other calls take at most 10 s (disconnect.do 5 s) or
	// ReadTimeout when shorter. The stream itself has no read deadline.
	// Default 30 s; -1 removes the bound of message and upload calls.
	ReadTimeout time.Duration
	// ServerIDHeader names the header carrying the node id. Default
	// "X-Sse-Server-Id".
	ServerIDHeader string
	// CORSOrigins lists the origins allowed to call cross-origin with
	// credentials, exactly as browsers send them in Origin
	// ("https://app.example.com"). A call that acts (connect, the .do
	// calls) from any other origin than these and the server's own is
	// refused with 403. Default none (same origin only).
	CORSOrigins []string
	// Channels decides which channels a browser may join, at connect
	// (channel=, channels=a,b) and with subscribe.do; pkg/channels
	// implements it. Default nil: browsers join only the channels their
	// identity names exactly (hub.User.Channels), which every connection
	// of the user joins at connect anyway.
	Channels ChannelPolicy
	// Wrap wraps successful JSON answers. Default: the seed server's
	// {"success":true,"code":200,"data":…,"message":null,"errorMessage":null}.
	Wrap func(data any) any
	// Logger receives request logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// Handler serves one app's browser endpoints under its base path.
type Handler struct {
	cfg           Config
	hub           *hub.Hub
	log           zerolog.Logger
	secrets       secrets
	shared        interner // strings open connections keep alike (connect.go)
	origins       *http.CrossOriginProtection
	moduleScript  *asset // sse.js as it is, the default
	classicScript *asset // sse.js without its export (?script-type=script)
	types         *asset // sse.d.ts
}

// New builds a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Hub == nil {
		return nil, errors.New("web: Config.Hub is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("web: Config.Auth is required")
	}
	if cfg.Path == "" || cfg.Path[0] != '/' || strings.HasSuffix(cfg.Path, "/") {
		return nil, errors.New("web: Config.Path must start with / and not end with /")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 10 << 20
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.ServerIDHeader == "" {
		cfg.ServerIDHeader = "X-Sse-Server-Id"
	}
	if cfg.Wrap == nil {
		cfg.Wrap = WrapOK
	}
	origins, err := newOriginCheck(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, hub: cfg.Hub, origins: origins}
	creds := []auth.Credentials{cfg.Credentials}
	if cs, ok := cfg.Auth.(CredentialSource); ok {
		creds = append(creds, cs.Credentials())
	}
	h.secrets = newSecrets(creds...)
	h.log = cfg.Logger.With().Str("component", "web").Str("app", cfg.Hub.App()).Logger()
	if h.cfg.Upstream == nil {
		h.cfg.Upstream = Echo(cfg.Hub, cfg.MaxBody)
	}
	if err := h.loadAssets(); err != nil {
		return nil, err
	}
	return h, nil
}

// Path returns the app's base path.
func (h *Handler) Path() string { return h.cfg.Path }

// Bounds of the calls that are no stream: how long reading a body may
// take and how large it may be.
const (
	callTimeout   = 10 * time.Second
	beaconTimeout = 5 * time.Second
	maxCallBody   = 64 << 10
	maxBeaconBody = 4 << 10
)

// ServeHTTP routes a request under the base path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(r.URL.Path, h.cfg.Path)
	if !ok {
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	h.setHeaders(w)
	if h.cors(w, r) {
		return
	}
	if rel != "/connect" || r.Method != http.MethodGet {
		// Bounds the body, read or not: an unread one is drained after
		// the answer (up to 256 KiB) to reuse the connection.
		setReadDeadline(w, h.callTimeout(callTimeout))
	}
	switch {
	case rel == "" || rel == "/" || rel == "/sse.js":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			h.serveScript(w, r)
		}
	case rel == "/sse.d.ts":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			h.types.serve(w, r)
		}
	case rel == "/connect":
		if !allow(w, r, http.MethodGet, http.MethodPost) || !h.originAllowed(w, r) {
			return
		}
		h.serveConnect(w, r)
	case strings.HasPrefix(rel, "/connect/"):
		h.serveCall(w, r, strings.TrimPrefix(rel, "/connect/"))
	default:
		WriteError(w, http.StatusNotFound, "not found")
	}
}

// serveCall answers the .json and .do calls. A .do call is checked in
// this order, before its body is read: method, origin, then, with the
// read deadline of its kind, authentication (all but disconnect.do) and
// content type.
func (h *Handler) serveCall(w http.ResponseWriter, r *http.Request, name string) {
	if strings.HasSuffix(name, ".json") {
		if !allow(w, r, http.MethodGet) {
			return
		}
		h.serveJSON(w, r, strings.TrimSuffix(name, ".json"))
		return
	}
	if !allow(w, r, http.MethodPost) {
		return
	}
	var serve func(user hub.User) // stays nil for disconnect.do, which is not authenticated
	timeout, jsonBody := h.callTimeout(callTimeout), true
	switch {
	case name == "addListener.do":
		serve = func(u hub.User) { h.serveListener(w, r, u, true) }
	case name == "removeListener.do":
		serve = func(u hub.User) { h.serveListener(w, r, u, false) }
	case name == "subscribe.do":
		serve = func(u hub.User) { h.serveChannels(w, r, u, true) }
	case name == "unsubscribe.do":
		serve = func(u hub.User) { h.serveChannels(w, r, u, false) }
	case name == "ack.do":
		serve = func(u hub.User) { h.serveAck(w, r, u) }
	case name == "disconnect.do":
		timeout = h.callTimeout(beaconTimeout)
	case strings.HasPrefix(name, "message/") && strings.HasSuffix(name, ".do"):
		path := strings.TrimSuffix(strings.TrimPrefix(name, "message/"), ".do")
		timeout = h.cfg.ReadTimeout
		serve = func(u hub.User) { h.serveUpstream(w, r, u, path, false) }
	case strings.HasPrefix(name, "upload/") && strings.HasSuffix(name, ".do"):
		path := strings.TrimSuffix(strings.TrimPrefix(name, "upload/"), ".do")
		timeout, jsonBody = h.cfg.ReadTimeout, false
		serve = func(u hub.User) { h.serveUpstream(w, r, u, path, true) }
	default:
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if !h.originAllowed(w, r) {
		return
	}
	setReadDeadline(w, timeout)
	if serve == nil {
		h.serveDisconnect(w, r)
		return
	}
	user, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if jsonBody && !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, "this call takes a JSON body (Content-Type: application/json)")
		return
	}
	serve(user)
}

// callTimeout is d, or Config.ReadTimeout when that is shorter.
func (h *Handler) callTimeout(d time.Duration) time.Duration {
	if h.cfg.ReadTimeout > 0 {
		return min(d, h.cfg.ReadTimeout)
	}
	return d
}

// setReadDeadline bounds reading the rest of the request to d from now (d
// <= 0: no bound). A ResponseWriter that cannot (a middleware's wrapper
// without Unwrap) leaves the server's timeouts alone.
func setReadDeadline(w http.ResponseWriter, d time.Duration) {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
}

// isJSON reports whether r declares a JSON body. Browsers send such a
// body cross-origin only after a CORS preflight.
func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

// originAllowed refuses (403) a call that acts from a foreign origin and
// reports whether the request may go on.
func (h *Handler) originAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !h.foreign(r) {
		return true
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = "a " + r.Header.Get("Sec-Fetch-Site") + " page"
	}
	h.log.Debug().Str("origin", from).Str("path", r.URL.Path).Msg("cross-origin call refused")
	refuse(w, r, http.StatusForbidden, "cross-origin call refused: "+from+" is neither this server's origin nor one of the app's cors origins")
	return false
}

// refuse answers an error for a request whose body is left unread; on
// HTTP/1 the connection is then closed instead of drained.
func refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	WriteError(w, status, msg)
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	return false
}

func (h *Handler) setHeaders(w http.ResponseWriter) {
	w.Header().Set(h.cfg.ServerIDHeader, h.hub.NodeID())
	w.Header().Set("X-Sse-Version", hub.Version)
}

// cors applies the app's cross-origin policy and answers preflights; it
// reports whether the request was fully answered.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(h.cfg.CORSOrigins, origin) {
		return false
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Allow-Credentials", "true")
	// The client honours Retry-After of a refused connect (503) on a
	// cross-origin page too.
	hdr.Set("Access-Control-Expose-Headers", "Retry-After")
	hdr.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		hdr.Set("Access-Control-Allow-Methods", "GET, POST")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hdr.Set("Access-Control-Allow-Headers", req)
		}
		hdr.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// loadAssets prepares the script in both forms and its types, all from
// clients/js: the module as the npm package ships it, the classic script
// derived from it.
func (h *Handler) loadAssets() error {
	module, err := sseclient.FS.ReadFile("sse.js")
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	types, err := sseclient.FS.ReadFile("sse.d.ts")
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	classic, err := classicScript(module)
	if err != nil {
		return err
	}
	const js = "application/javascript;charset=utf-8"
	if h.moduleScript, err = newAsset(js, module); err != nil {
		return err
	}
	if h.classicScript, err = newAsset(js, classic); err != nil {
		return err
	}
	h.types, err = newAsset("application/typescript;charset=utf-8", types)
	return err
}

// serveScript answers sse.js: a module unless ?script-type asks for
// anything else (the seed's "script": a classic script).
func (h *Handler) serveScript(w http.ResponseWriter, r *http.Request) {
	a := h.moduleScript
	if t := r.URL.Query().Get("script-type"); t != "" && !strings.EqualFold(t, "module") {
		a = h.classicScript
	}
	a.serve(w, r)
}

// authenticate answers 401/503 itself and reports false when the request
// has no identity.
// Error texts are redacted: a webhook's error quotes the URL it called,
// with the browser's token.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (hub.User, bool) {
	u, err := h.cfg.Auth.Authenticate(r)
	if err == nil {
		return u, true
	}
	msg := h.secrets.redact(r, err.Error())
	if errors.Is(err, auth.ErrUnavailable) {
		h.log.Warn().Str("error", msg).Msg("authentication unavailable")
		refuse(w, r, http.StatusServiceUnavailable, auth.ErrUnavailable.Error())
		return hub.User{}, false
	}
	h.log.Debug().Str("error", msg).Str("path", r.URL.Path).Msg("unauthenticated")
	refuse(w, r, http.StatusUnauthorized, msg)
	return hub.User{}, false
}

// WrapOK wraps data the way the seed server wraps successful answers:
// {"success": true, "code": 200, "data": data, "message": null,
// "errorMessage": null}. It is Config.Wrap's default, and what an
// UpstreamHandler answers a seed client with.
func WrapOK(data any) any { return httpx.WrapOK(data) }

func (h *Handler) writeOK(w http.ResponseWriter, data any) {
	WriteJSON(w, http.StatusOK, h.cfg.Wrap(data))
}

// WriteJSON answers v as JSON with status, for an UpstreamHandler (see
// Echo).
func WriteJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// WriteError answers {"error": msg} with status, the error shape of every
// pushd endpoint, for an UpstreamHandler.
func WriteError(w http.ResponseWriter, status int, msg string) { httpx.WriteError(w, status, msg) }

package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/static"
)

// Config configures a Handler.
type Config struct {
	// Hub is the app's hub. Required.
	Hub *hub.Hub
	// Path is the app's base path, e.g. "/sse/demo". Required.
	Path string
	// Auth authenticates every request but the script and disconnect.do:
	// an error wrapping auth.ErrUnavailable gives 503, any other 401.
	// Required.
	Auth auth.Authenticator
	// Upstream answers message/{path}.do and upload/{path}.do. Default:
	// Echo, which answers with what it received.
	Upstream UpstreamHandler
	// EnableJSON turns on users.json, connections.json and
	// repositoryMessages.json. Default false: they expose other users'
	// connections.
	EnableJSON bool
	// MaxBody bounds request bodies read by this package (JSON calls and
	// the echo upstream). Default 10 MiB.
	MaxBody int64
	// ServerIDHeader names the header carrying the node id. Default
	// "X-Sse-Server-Id".
	ServerIDHeader string
	// CORSOrigins lists the origins allowed to call cross-origin with
	// credentials. Default none (same origin only).
	CORSOrigins []string
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
	moduleScript  []byte
	classicScript []byte
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
	if cfg.ServerIDHeader == "" {
		cfg.ServerIDHeader = "X-Sse-Server-Id"
	}
	if cfg.Wrap == nil {
		cfg.Wrap = WrapOK
	}
	h := &Handler{cfg: cfg, hub: cfg.Hub}
	h.log = cfg.Logger.With().Str("component", "web").Str("app", cfg.Hub.App()).Logger()
	if h.cfg.Upstream == nil {
		h.cfg.Upstream = Echo(cfg.Hub, cfg.MaxBody)
	}
	script, err := static.FS.ReadFile("sse.js")
	if err != nil {
		return nil, err
	}
	h.classicScript = script
	h.moduleScript = append(slices.Clip(script), "\nexport default Sse"...)
	return h, nil
}

// Path returns the app's base path.
func (h *Handler) Path() string { return h.cfg.Path }

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
	switch {
	case rel == "" || rel == "/" || rel == "/sse.js":
		h.serveScript(w, r)
	case rel == "/connect":
		if !allow(w, r, http.MethodGet, http.MethodPost) {
			return
		}
		h.serveConnect(w, r)
	case strings.HasPrefix(rel, "/connect/"):
		h.serveCall(w, r, strings.TrimPrefix(rel, "/connect/"))
	default:
		WriteError(w, http.StatusNotFound, "not found")
	}
}

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
	switch {
	case name == "addListener.do":
		h.serveListener(w, r, true)
	case name == "removeListener.do":
		h.serveListener(w, r, false)
	case name == "disconnect.do":
		h.serveDisconnect(w, r)
	case name == "ack.do":
		h.serveAck(w, r)
	case strings.HasPrefix(name, "message/") && strings.HasSuffix(name, ".do"):
		h.serveUpstream(w, r, strings.TrimSuffix(strings.TrimPrefix(name, "message/"), ".do"), false)
	case strings.HasPrefix(name, "upload/") && strings.HasSuffix(name, ".do"):
		h.serveUpstream(w, r, strings.TrimSuffix(strings.TrimPrefix(name, "upload/"), ".do"), true)
	default:
		WriteError(w, http.StatusNotFound, "not found")
	}
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

func (h *Handler) serveScript(w http.ResponseWriter, r *http.Request) {
	body := h.moduleScript
	if t := r.URL.Query().Get("script-type"); t != "" && !strings.EqualFold(t, "module") {
		body = h.classicScript
	}
	w.Header().Set("Content-Type", "application/javascript;charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(body)
}

// authenticate answers 401/503 itself and reports false when the request
// has no identity.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (hub.User, bool) {
	u, err := h.cfg.Auth.Authenticate(r)
	if err == nil {
		return u, true
	}
	if errors.Is(err, auth.ErrUnavailable) {
		h.log.Warn().Err(err).Msg("authentication unavailable")
		WriteError(w, http.StatusServiceUnavailable, err.Error())
		return hub.User{}, false
	}
	h.log.Debug().Err(err).Str("path", r.URL.Path).Msg("unauthenticated")
	WriteError(w, http.StatusUnauthorized, err.Error())
	return hub.User{}, false
}

// WrapOK wraps data the way the seed server wraps successful answers.
func WrapOK(data any) any {
	return okBody{Success: true, Code: 200, Data: data}
}

type okBody struct {
	Success      bool    `json:"success"`
	Code         int     `json:"code"`
	Data         any     `json:"data"`
	Message      *string `json:"message"`
	ErrorMessage *string `json:"errorMessage"`
}

func (h *Handler) writeOK(w http.ResponseWriter, data any) {
	WriteJSON(w, http.StatusOK, h.cfg.Wrap(data))
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers {"error": msg} with status, the error shape of every
// pushd endpoint.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Del("Content-Length")
	WriteJSON(w, status, map[string]string{"error": msg})
}

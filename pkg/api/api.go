package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
)

// App is one app served by the API.
type App struct {
	// Hub is the app's hub.
	Hub *hub.Hub
	// Keys are the API keys accepted for the app. An app without keys
	// refuses every call.
	Keys []string
}

// Config configures a Handler.
type Config struct {
	// Apps maps app names to apps.
	Apps map[string]App
	// MaxBody bounds request bodies. Default 1 MiB.
	MaxBody int64
	// MaxBatch bounds the sends of one batch (a JSON array posted to
	// …/send); a longer batch is refused with 413. Default
	// DefaultMaxBatch. A batch is a body, so MaxBody bounds its bytes.
	MaxBatch int
	// AsyncTimeout bounds a send made with "async": true. Default 30 s.
	AsyncTimeout time.Duration
	// Logger receives the API's logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// Handler serves the API; mount it at the server's root (it matches full
// paths under /api/v1/apps/).
type Handler struct {
	cfg Config
	log zerolog.Logger
	mux *http.ServeMux
}

// New builds a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.AsyncTimeout <= 0 {
		cfg.AsyncTimeout = 30 * time.Second
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With().Str("component", "api").Logger(), mux: http.NewServeMux()}
	const base = "/api/v1/apps/{app}/"
	h.handle("POST "+base+"send", h.send)
	h.handle("GET "+base+"users", h.users)
	h.handle("GET "+base+"connections", h.connections)
	h.handle("GET "+base+"stats", h.stats)
	h.handle("GET "+base+"online", h.online)
	h.handle("POST "+base+"disconnect", h.disconnect)
	h.handle("POST "+base+"duration", h.duration)
	h.handle("GET "+base+"messages", h.messages)
	h.handle("POST "+base+"subscribe", h.subscription(true))
	h.handle("POST "+base+"unsubscribe", h.subscription(false))
	h.handle("GET "+base+"channels", h.channels)
	h.handle("GET "+base+"channels/{name}/presence", h.presence)
	h.handle("GET "+base+"channels/{name}/history", h.history)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return h, nil
}

// ServeHTTP routes an API request. A send, the hot call, is matched
// without the mux when its path is plain.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if app, ok := sendApp(r); ok {
		h.serve(w, r, app, h.send)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// sendApp returns the app of a POST /api/v1/apps/{app}/send whose path
// the mux would take as it is: clean, without escapes.
func sendApp(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost || r.URL.RawPath != "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/apps/")
	if !ok {
		return "", false
	}
	app, ok := strings.CutSuffix(rest, "/send")
	if !ok || app == "" || app == "." || app == ".." || strings.IndexByte(app, '/') >= 0 {
		return "", false
	}
	return app, true
}

// handle registers fn behind the app lookup and API key check.
func (h *Handler) handle(pattern string, fn func(http.ResponseWriter, *http.Request, *hub.Hub)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, r.PathValue("app"), fn)
	})
}

// serve looks the app up, checks the API key (before anything reads the
// body) and calls fn.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string, fn func(http.ResponseWriter, *http.Request, *hub.Hub)) {
	app, ok := h.cfg.Apps[name]
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("unknown app %q", name))
		return
	}
	switch err := httpx.CheckBearer(r, app.Keys...); {
	case errors.Is(err, httpx.ErrNoBearer):
		httpx.WriteError(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key>")
		return
	case err != nil:
		httpx.WriteError(w, http.StatusUnauthorized, "invalid API key for this app")
		return
	}
	fn(w, r, app.Hub)
}

// readJSON decodes the body strictly (unknown fields are refused).
func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return httpx.ReadJSON(w, r, v, h.cfg.MaxBody, true)
}

func (h *Handler) users(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	list, err := hb.Users(r.Context(), hub.UsersQuery{Name: r.URL.Query().Get("name")})
	if err != nil {
		h.log.Warn().Err(err).Msg("users: partial cluster answer")
	}
	pageNum, pageSize := httpx.PageParams(r)
	httpx.WriteJSON(w, http.StatusOK, httpx.PageOf(list, pageNum, pageSize))
}

func (h *Handler) connections(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	q := r.URL.Query()
	pageNum, pageSize := httpx.PageParams(r)
	list, total, err := hb.CountConnections(r.Context(), hub.ConnectionQuery{
		ID: q.Get("id"), UserID: q.Get("userId"), ClientID: q.Get("clientId"), Name: q.Get("name"),
		Limit: httpx.PageLimit(pageNum, pageSize),
	})
	if err != nil {
		h.log.Warn().Err(err).Msg("connections: partial cluster answer")
	}
	httpx.WriteJSON(w, http.StatusOK, httpx.PageFrom(list, total, pageNum, pageSize))
}

func (h *Handler) stats(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	st, err := hb.Stats(r.Context())
	if err != nil {
		h.log.Warn().Err(err).Msg("stats: partial cluster answer")
	}
	httpx.WriteJSON(w, http.StatusOK, st)
}

func (h *Handler) online(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	userID := r.URL.Query().Get("userId")
	if userID == "" {
		httpx.WriteError(w, http.StatusBadRequest, "userId is required")
		return
	}
	on, err := hb.IsOnline(r.Context(), userID)
	if err != nil && !on {
		hubhttp.WriteError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"online": on})
}

// DisconnectRequest is the body of POST …/disconnect.
type DisconnectRequest struct {
	UserIDs       []string `json:"userIds,omitempty"`
	AccessTokens  []string `json:"accessTokens,omitempty"`
	ConnectionIDs []string `json:"connectionIds,omitempty"`
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	var req DisconnectRequest
	if !h.readJSON(w, r, &req) {
		return
	}
	t := hub.Target{UserIDs: req.UserIDs, AccessTokens: req.AccessTokens, ConnectionIDs: req.ConnectionIDs}
	if t.IsZero() {
		httpx.WriteError(w, http.StatusBadRequest, "name userIds, accessTokens or connectionIds")
		return
	}
	n, err := hb.Disconnect(r.Context(), t, hub.ReasonKicked)
	if err != nil && n == 0 {
		hubhttp.WriteError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"disconnected": n})
}

// DurationRequest is the body of POST …/duration.
type DurationRequest struct {
	To      hub.Target `json:"to"`
	Seconds int64      `json:"seconds"`
}

func (h *Handler) duration(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	var req DurationRequest
	if !h.readJSON(w, r, &req) {
		return
	}
	if req.Seconds < 0 {
		httpx.WriteError(w, http.StatusBadRequest, "seconds must not be negative")
		return
	}
	n, err := hb.SetDuration(r.Context(), req.To, req.Seconds)
	if err != nil && n == 0 {
		hubhttp.WriteError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"reached": n})
}

func (h *Handler) messages(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	pageNum, pageSize := httpx.PageParams(r)
	page, err := hubhttp.MessagesPage(r.Context(), hb, hubhttp.MessagesFilter(r), pageNum, pageSize)
	if err != nil {
		hubhttp.WriteError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, page)
}

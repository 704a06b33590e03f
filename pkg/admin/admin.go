package admin

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

//go:embed admin.html
var page []byte

// Config configures a Handler.
type Config struct {
	// Token is the secret every data call and action must carry as
	// "Authorization: Bearer <token>". Required.
	Token string
	// Hubs are the apps shown, in this order.
	Hubs []*hub.Hub
	// Limit bounds the users and the connections listed per app in the
	// overview (the totals are always reported). Default 100.
	Limit int
	// Timeout bounds the cluster survey of one overview, search or action.
	// Default 3 s.
	Timeout time.Duration
	// Logger receives one info line per action (who was sent to or
	// kicked, and how many connections it reached). The zero value logs
	// nothing.
	Logger zerolog.Logger
}

// Handler serves the admin page, its data and its actions; mount it at
// /admin/.
type Handler struct {
	cfg  Config
	hubs map[string]*hub.Hub
	log  zerolog.Logger
	mux  *http.ServeMux
}

// New builds a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Token == "" {
		return nil, errors.New("admin: a token is required")
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	h := &Handler{
		cfg:  cfg,
		hubs: make(map[string]*hub.Hub, len(cfg.Hubs)),
		log:  cfg.Logger.With().Str("component", "admin").Logger(),
		mux:  http.NewServeMux(),
	}
	for _, hb := range cfg.Hubs {
		h.hubs[hb.App()] = hb
	}
	h.mux.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	h.mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	h.mux.HandleFunc("GET /admin/api/overview", h.authorized(h.overview))
	h.mux.HandleFunc("GET /admin/api/users", h.authorized(h.users))
	h.mux.HandleFunc("GET /admin/api/connections", h.authorized(h.connections))
	h.mux.HandleFunc("POST /admin/api/send", h.authorized(h.send))
	h.mux.HandleFunc("POST /admin/api/kick", h.authorized(h.kick))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "no such admin endpoint: "+r.Method+" "+r.URL.Path)
	})
	return h, nil
}

// ServeHTTP routes an admin request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authorized lets only calls with the admin token through. The token is
// read from the Authorization header only, never from a cookie, so a page
// of another site cannot make a browser act with it.
func (h *Handler) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch err := httpx.CheckBearer(r, h.cfg.Token); {
		case errors.Is(err, httpx.ErrNoBearer):
			httpx.WriteError(w, http.StatusUnauthorized, "missing admin token: send Authorization: Bearer <token>")
			return
		case err != nil:
			httpx.WriteError(w, http.StatusUnauthorized, "invalid admin token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r)
	}
}

// hub returns the hub of app, or answers 400 or 404 and returns nil.
func (h *Handler) hub(w http.ResponseWriter, app string) *hub.Hub {
	if app == "" {
		httpx.WriteError(w, http.StatusBadRequest, "app is required")
		return nil
	}
	hb := h.hubs[app]
	if hb == nil {
		httpx.WriteError(w, http.StatusNotFound, "unknown app: "+app)
	}
	return hb
}

// Overview is the admin page's data.
type Overview struct {
	// Node is the node that answered.
	Node string `json:"node"`
	// Time is when the overview was taken, in Unix milliseconds.
	Time int64      `json:"time"`
	Apps []AppState `json:"apps"`
}

// AppState is one app across the cluster.
type AppState struct {
	Name  string         `json:"name"`
	Nodes []hub.NodeInfo `json:"nodes"`
	// Users lists the first Limit online users by id (left out with
	// ?summary=1). UsersTotal sums the nodes' user counts: a user
	// connected to several nodes counts once per node.
	Users      []hub.UserInfo `json:"users,omitempty"`
	UsersTotal int            `json:"usersTotal"`
	// Connections lists the first Limit connections (by user name, then
	// age; left out with ?summary=1); ConnectionsTotal counts all of them
	// on the nodes that answered.
	Connections      []hub.ConnectionInfo `json:"connections,omitempty"`
	ConnectionsTotal int                  `json:"connectionsTotal"`
	// QoSBacklog counts the QoS messages stored and not yet acknowledged
	// by all their recipients, as the answering node's repository holds
	// them (a Redis repository is shared by the cluster). Absent when the
	// app has no QoS.
	QoSBacklog *int `json:"qosBacklog,omitempty"`
	// Partial says why some nodes are missing from the figures, if they are.
	Partial string `json:"partial,omitempty"`
}

// overview answers every app's nodes, totals and QoS backlog and, unless
// the query says summary=1, the first users and connections.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	lists := r.URL.Query().Get("summary") != "1"
	ov := Overview{Time: time.Now().UnixMilli(), Apps: make([]AppState, 0, len(h.cfg.Hubs))}
	for _, hb := range h.cfg.Hubs {
		ov.Node = hb.NodeID()
		ov.Apps = append(ov.Apps, h.appState(ctx, hb, lists))
	}
	httpx.WriteJSON(w, http.StatusOK, ov)
}

// appState gathers one app's nodes, QoS backlog and, with lists, users and
// connections; each node sends at most Limit users and connections. Survey
// and store errors make the state partial, never fail it.
func (h *Handler) appState(ctx context.Context, hb *hub.Hub, lists bool) AppState {
	st := AppState{Name: hb.App()}
	var errs []error
	var err error
	st.Nodes, err = hb.Nodes(ctx)
	errs = append(errs, err)
	for _, n := range st.Nodes {
		st.UsersTotal += n.Stats.Users
		st.ConnectionsTotal += n.Stats.Connections
	}
	if hb.QoSEnabled() {
		// One message is the smallest page: only the count is wanted.
		_, backlog, err := hb.Messages(ctx, qos.Filter{}, 0, 1)
		if err == nil {
			st.QoSBacklog = &backlog
		}
		errs = append(errs, err)
	}
	if lists {
		st.Users, err = hb.Users(ctx, hub.UsersQuery{Limit: h.cfg.Limit})
		errs = append(errs, err)
		st.Connections, err = hb.Connections(ctx, hub.ConnectionQuery{Limit: h.cfg.Limit})
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		st.Partial = err.Error()
	}
	return st
}

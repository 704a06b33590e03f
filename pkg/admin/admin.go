package admin

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

//go:embed admin.html
var page []byte

// Config configures a Handler.
type Config struct {
	// Token is the secret the page's data calls must carry as
	// "Authorization: Bearer <token>". Required.
	Token string
	// Hubs are the apps shown, in this order.
	Hubs []*hub.Hub
	// Limit bounds the users and the connections listed per app (the
	// totals are always reported). Default 100.
	Limit int
	// Timeout bounds the cluster survey of one overview. Default 3 s.
	Timeout time.Duration
}

// Handler serves the admin page and its data; mount it at /admin/.
type Handler struct {
	cfg Config
	mux *http.ServeMux
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
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	h.mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	h.mux.HandleFunc("GET /admin/api/overview", h.authorized(h.overview))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		web.WriteError(w, http.StatusNotFound, "no such admin endpoint: "+r.Method+" "+r.URL.Path)
	})
	return h, nil
}

// ServeHTTP routes an admin request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authorized lets only calls with the admin token through.
func (h *Handler) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !found || token == "" {
			web.WriteError(w, http.StatusUnauthorized, "missing admin token: send Authorization: Bearer <token>")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.Token)) != 1 {
			web.WriteError(w, http.StatusUnauthorized, "invalid admin token")
			return
		}
		next(w, r)
	}
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
	// Users lists the first Limit online users by id. UsersTotal sums the
	// nodes' user counts: a user connected to several nodes counts once per
	// node.
	Users      []hub.UserInfo `json:"users"`
	UsersTotal int            `json:"usersTotal"`
	// Connections lists the first Limit connections (by user name, then
	// age); ConnectionsTotal counts all of them on the nodes that answered.
	Connections      []hub.ConnectionInfo `json:"connections"`
	ConnectionsTotal int                  `json:"connectionsTotal"`
	// Partial says why some nodes are missing from the figures, if they are.
	Partial string `json:"partial,omitempty"`
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	ov := Overview{Time: time.Now().UnixMilli(), Apps: make([]AppState, 0, len(h.cfg.Hubs))}
	for _, hb := range h.cfg.Hubs {
		ov.Node = hb.NodeID()
		ov.Apps = append(ov.Apps, h.appState(ctx, hb))
	}
	web.WriteJSON(w, http.StatusOK, ov)
}

// appState gathers one app's nodes, users and connections; each node
// sends at most Limit users and connections. Survey errors make the state
// partial, never fail it.
func (h *Handler) appState(ctx context.Context, hb *hub.Hub) AppState {
	st := AppState{Name: hb.App()}
	var errs []error
	var err error
	st.Nodes, err = hb.Nodes(ctx)
	errs = append(errs, err)
	for _, n := range st.Nodes {
		st.UsersTotal += n.Stats.Users
		st.ConnectionsTotal += n.Stats.Connections
	}
	st.Users, err = hb.Users(ctx, hub.UsersQuery{Limit: h.cfg.Limit})
	errs = append(errs, err)
	st.Connections, err = hb.Connections(ctx, hub.ConnectionQuery{Limit: h.cfg.Limit})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		st.Partial = err.Error()
	}
	return st
}

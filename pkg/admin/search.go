package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/hub"
)

// Paging bounds of the searches. A page is cut from the first offset+limit
// matches that every node sends, so the depth is bounded, not just the
// page.
const (
	defaultPage = 25
	maxPage     = 200
	maxDepth    = 1000
)

// Page is one page of a search: users or connections of one app.
type Page[T any] struct {
	App   string `json:"app"`
	Items []T    `json:"items"`
	// Offset and Limit are the page asked for.
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	// More says that matches follow this page.
	More bool `json:"more"`
	// Total counts every match on the nodes that answered; users searched
	// by name alone have no total (only More).
	Total *int `json:"total,omitempty"`
	// Partial says why some nodes are missing from the answer, if they are.
	Partial string `json:"partial,omitempty"`
}

// search is what both searches take from the query string: the app, the
// filters and the page.
type search struct {
	app, userID, name string
	offset, limit     int
}

// parseSearch reads app, userId (exact), name (contained, ignoring case),
// offset and limit, or answers 400 and reports false.
func parseSearch(w http.ResponseWriter, q url.Values) (search, bool) {
	s := search{app: q.Get("app"), userID: q.Get("userId"), name: q.Get("name"), limit: defaultPage}
	for _, p := range []struct {
		key string
		dst *int
		min int
	}{{"offset", &s.offset, 0}, {"limit", &s.limit, 1}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min {
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s must be an integer of at least %d", p.key, p.min))
			return s, false
		}
		*p.dst = n
	}
	switch {
	case s.limit > maxPage:
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit is at most %d", maxPage))
		return s, false
	case s.offset+s.limit > maxDepth:
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("offset+limit is at most %d: narrow the search", maxDepth))
		return s, false
	}
	return s, true
}

// startSearch reads a search request and finds its app's hub, answering
// the error itself when it cannot; the context is bounded by
// Config.Timeout.
func (h *Handler) startSearch(w http.ResponseWriter, r *http.Request) (search, *hub.Hub, context.Context, context.CancelFunc, bool) {
	s, ok := parseSearch(w, r.URL.Query())
	if !ok {
		return s, nil, nil, nil, false
	}
	hb := h.hub(w, s.app)
	if hb == nil {
		return s, nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	return s, hb, ctx, cancel, true
}

// users answers one page of the online users of an app, by id; userId
// selects one user, name those whose name contains it.
func (h *Handler) users(w http.ResponseWriter, r *http.Request) {
	s, hb, ctx, cancel, ok := h.startSearch(w, r)
	if !ok {
		return
	}
	defer cancel()
	p := Page[hub.UserInfo]{App: s.app, Offset: s.offset, Limit: s.limit}
	var users []hub.UserInfo
	var err error
	if s.userID != "" {
		// The hub lists users by name only; one user's connections give
		// its entry and the exact count.
		users, err = userByID(ctx, hb, s.userID, s.name)
		total := len(users)
		p.Total = &total
	} else {
		// One more than the page tells whether more follow.
		users, err = hb.Users(ctx, hub.UsersQuery{Name: s.name, Limit: s.offset + s.limit + 1})
	}
	p.Items, p.More = cut(users, s.offset, s.limit)
	if err != nil {
		p.Partial = err.Error()
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// userByID finds user id (with a name containing name, when set) from its
// connections: none or one entry.
func userByID(ctx context.Context, hb *hub.Hub, id, name string) ([]hub.UserInfo, error) {
	conns, n, err := hb.CountConnections(ctx, hub.ConnectionQuery{UserID: id, Name: name, Limit: 1})
	if len(conns) == 0 {
		return nil, err
	}
	u := conns[0].AccessUser
	return []hub.UserInfo{{ID: u.ID, Name: u.Name, TenantID: u.TenantID, Claims: u.Claims, Connections: n}}, err
}

// connections answers one page of the open connections of an app, in the
// hub's order (user name, age, id); userId keeps one user's, name those of
// users whose name contains it.
func (h *Handler) connections(w http.ResponseWriter, r *http.Request) {
	s, hb, ctx, cancel, ok := h.startSearch(w, r)
	if !ok {
		return
	}
	defer cancel()
	list, total, err := hb.CountConnections(ctx, hub.ConnectionQuery{UserID: s.userID, Name: s.name, Limit: s.offset + s.limit})
	p := Page[hub.ConnectionInfo]{App: s.app, Offset: s.offset, Limit: s.limit, Total: &total}
	p.Items, _ = cut(list, s.offset, s.limit)
	p.More = s.offset+len(p.Items) < total
	if err != nil {
		p.Partial = err.Error()
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// cut returns the page [offset, offset+limit) of list, never nil, and
// whether list holds more after it.
func cut[T any](list []T, offset, limit int) ([]T, bool) {
	if offset >= len(list) {
		return []T{}, false
	}
	list = list[offset:]
	if len(list) > limit {
		return list[:limit], true
	}
	return list, false
}

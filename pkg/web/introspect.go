package web

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// Page is one page of a list, in the seed server's PageInfo shape.
type Page[T any] struct {
	Total    int  `json:"total"`
	PageNum  int  `json:"pageNum"`
	PageSize int  `json:"pageSize"`
	List     []T  `json:"list"`
	Timeout  bool `json:"timeout"`
}

// PageOf slices list for pageNum (from 1) and pageSize as the seed does.
func PageOf[T any](list []T, pageNum, pageSize int) Page[T] {
	return PageFrom(list, len(list), pageNum, pageSize)
}

// PageFrom is PageOf for a list holding only the first items of total
// (at least PageLimit of them, when there are as many).
func PageFrom[T any](list []T, total, pageNum, pageSize int) Page[T] {
	p := Page[T]{Total: total, PageNum: pageNum, PageSize: pageSize, List: []T{}}
	if pageSize <= 0 {
		return p
	}
	from := (max(pageNum, 1) - 1) * pageSize
	if from < len(list) {
		p.List = list[from:min(from+pageSize, len(list))]
	}
	return p
}

// PageLimit is how many items of the order a page needs: those of every
// page up to pageNum (1 when pageSize asks for none, to count them).
func PageLimit(pageNum, pageSize int) int {
	if pageSize <= 0 {
		return 1
	}
	pages := max(pageNum, 1)
	if pages > math.MaxInt32/pageSize {
		return math.MaxInt32
	}
	return pages * pageSize
}

// PageParams reads pageNum (default 1) and pageSize (default 100).
func PageParams(r *http.Request) (pageNum, pageSize int) {
	pageNum, pageSize = 1, 100
	if n, err := strconv.Atoi(r.URL.Query().Get("pageNum")); err == nil {
		pageNum = n
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("pageSize")); err == nil {
		pageSize = n
	}
	return pageNum, pageSize
}

// serveJSON answers users.json, connections.json and
// repositoryMessages.json, when enabled, to authenticated callers, each
// scoped to the caller: users of its tenant, its own connections, and
// the QoS messages of its tenant (see scopedFilter).
func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request, name string) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if !h.cfg.EnableJSON {
		WriteError(w, http.StatusForbidden, "the .json endpoints are disabled for this app (enable_json_endpoints)")
		return
	}
	q := r.URL.Query()
	pageNum, pageSize := PageParams(r)
	ctx := r.Context()
	var page any
	var err error
	switch name {
	case "users":
		var list []hub.UserInfo
		if q.Get("cluster") == "false" {
			list = h.hub.LocalUsers(hub.UsersQuery{Name: q.Get("name")})
		} else {
			list, err = h.hub.Users(ctx, hub.UsersQuery{Name: q.Get("name")})
		}
		list = slices.DeleteFunc(list, func(u hub.UserInfo) bool { return u.TenantID != caller.TenantID })
		page = PageOf(list, pageNum, pageSize)
	case "connections":
		var list []hub.ConnectionInfo
		list, err = h.ownConnections(ctx, caller, hub.ConnectionQuery{ID: q.Get("id"), ClientID: q.Get("clientId"),
			Name: q.Get("name")}, q.Get("cluster") != "false")
		page = PageOf(list, pageNum, pageSize)
	case "repositoryMessages":
		f, scoped := scopedFilter(caller, messagesFilter(r))
		if !scoped {
			page = Page[qos.Message]{PageNum: pageNum, PageSize: pageSize, List: []qos.Message{}}
			break
		}
		page, err = messagesPage(ctx, h.hub, f, pageNum, pageSize)
	default:
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if err != nil && page == nil {
		hubError(w, err)
		return
	}
	h.writeOK(w, page)
}

// ownConnections lists the connections of caller matching q: ids are
// capabilities (disconnect.do closes a connection for whoever presents
// its id), so nobody is shown another user's. A caller without user id
// has none to see.
func (h *Handler) ownConnections(ctx context.Context, caller hub.User, q hub.ConnectionQuery, cluster bool) ([]hub.ConnectionInfo, error) {
	if caller.ID == "" {
		return []hub.ConnectionInfo{}, nil
	}
	q.UserID = caller.ID
	var list []hub.ConnectionInfo
	var err error
	if cluster {
		list, _, err = h.hub.CountConnections(ctx, q)
	} else {
		list = h.hub.LocalConnections(q)
	}
	return slices.DeleteFunc(list, func(c hub.ConnectionInfo) bool { return !caller.MayActFor(c.AccessUser) }), err
}

// scopedFilter narrows f to what caller may see: the messages addressed
// to its tenant, or, for a caller without tenant, those addressed to its
// user id (or its access token, without user id). It reports false for a
// caller with none of them, who sees nothing.
func scopedFilter(caller hub.User, f qos.Filter) (qos.Filter, bool) {
	switch {
	case caller.TenantID != "":
		f.TenantID = caller.TenantID
	case caller.ID != "":
		f.UserID = caller.ID
	case caller.AccessToken != "":
		f.AccessToken = caller.AccessToken
	default:
		return f, false
	}
	return f, true
}

// messagesFilter reads the seed's filters of repositoryMessages.json.
func messagesFilter(r *http.Request) qos.Filter {
	q := r.URL.Query()
	return qos.Filter{UserID: q.Get("userId"), AccessToken: q.Get("accessToken"), TenantID: q.Get("tenantId"),
		Channel: q.Get("channel"), Event: strings.Split(q.Get("listeners"), ",")[0]}
}

// MessagesPage lists the QoS backlog with the seed's filters (userId,
// accessToken, tenantId, channel, listeners) and paging.
func MessagesPage(ctx context.Context, hb *hub.Hub, r *http.Request) (any, error) {
	pageNum, pageSize := PageParams(r)
	return messagesPage(ctx, hb, messagesFilter(r), pageNum, pageSize)
}

func messagesPage(ctx context.Context, hb *hub.Hub, f qos.Filter, pageNum, pageSize int) (any, error) {
	list, total, err := hb.Messages(ctx, f, (max(pageNum, 1)-1)*max(pageSize, 0), max(pageSize, 0))
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []qos.Message{}
	}
	return Page[qos.Message]{Total: total, PageNum: pageNum, PageSize: pageSize, List: list}, nil
}

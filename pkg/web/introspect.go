package web

import (
	"context"
	"math"
	"net/http"
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
// repositoryMessages.json, when enabled, to authenticated callers.
func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := h.authenticate(w, r); !ok {
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
		page = PageOf(list, pageNum, pageSize)
	case "connections":
		cq := hub.ConnectionQuery{ID: q.Get("id"), ClientID: q.Get("clientId"), Name: q.Get("name")}
		if q.Get("cluster") == "false" {
			page = PageOf(h.hub.LocalConnections(cq), pageNum, pageSize)
			break
		}
		cq.Limit = PageLimit(pageNum, pageSize)
		var list []hub.ConnectionInfo
		var total int
		list, total, err = h.hub.CountConnections(ctx, cq)
		page = PageFrom(list, total, pageNum, pageSize)
	case "repositoryMessages":
		page, err = MessagesPage(ctx, h.hub, r)
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

// MessagesPage lists the QoS backlog with the seed's filters (userId,
// accessToken, tenantId, channel, listeners) and paging.
func MessagesPage(ctx context.Context, hb *hub.Hub, r *http.Request) (any, error) {
	q := r.URL.Query()
	pageNum, pageSize := PageParams(r)
	f := qos.Filter{UserID: q.Get("userId"), AccessToken: q.Get("accessToken"), TenantID: q.Get("tenantId"),
		Channel: q.Get("channel"), Event: strings.Split(q.Get("listeners"), ",")[0]}
	list, total, err := hb.Messages(ctx, f, (max(pageNum, 1)-1)*max(pageSize, 0), max(pageSize, 0))
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []qos.Message{}
	}
	return Page[qos.Message]{Total: total, PageNum: pageNum, PageSize: pageSize, List: list}, nil
}

package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

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
	pageNum, pageSize := httpx.PageParams(r)
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
		page = httpx.PageOf(list, pageNum, pageSize)
	case "connections":
		var list []hub.ConnectionInfo
		list, err = h.ownConnections(ctx, caller, hub.ConnectionQuery{ID: q.Get("id"), ClientID: q.Get("clientId"),
			Name: q.Get("name")}, q.Get("cluster") != "false")
		page = httpx.PageOf(list, pageNum, pageSize)
	case "repositoryMessages":
		f, scoped := scopedFilter(caller, hubhttp.MessagesFilter(r))
		if !scoped {
			page = httpx.Page[qos.Message]{PageNum: pageNum, PageSize: pageSize, List: []qos.Message{}}
			break
		}
		var msgs httpx.Page[qos.Message]
		if msgs, err = hubhttp.MessagesPage(ctx, h.hub, f, pageNum, pageSize); err == nil {
			page = msgs
		}
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

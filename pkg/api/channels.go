package api

import (
	"cmp"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/hub"
)

// SubscribeRequest is the body of POST …/subscribe and …/unsubscribe:
// the connections To addresses, on every node, join or leave Channels.
type SubscribeRequest struct {
	To       hub.Target `json:"to"`
	Channels []string   `json:"channels"`
}

// Presence is the answer of GET …/channels/{name}/presence: who is in a
// channel, cluster-wide. Users lists every user with an id among the
// channel's connections, by id, each with its connections in the channel;
// the page holds the connections themselves in the order of …/connections.
type Presence struct {
	Channel string `json:"channel"`
	// Connections counts the channel's connections (the page's total).
	Connections int            `json:"connections"`
	Users       []hub.UserInfo `json:"users"`
	httpx.Page[hub.ConnectionInfo]
}

// subscription serves …/subscribe (join) and …/unsubscribe.
func (h *Handler) subscription(join bool) func(http.ResponseWriter, *http.Request, *hub.Hub) {
	return func(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
		var req SubscribeRequest
		if !h.readJSON(w, r, &req) {
			return
		}
		for _, name := range req.Channels {
			// The hub bounds the length; this refuses what no browser
			// could join either (length passed as its own bound).
			if name != "" && !channels.ValidName(name, len(name)) {
				httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("channels: %q is not a channel name: UTF-8 without control characters is expected", name))
				return
			}
		}
		n, err := hb.Subscribe(r.Context(), req.To, req.Channels, join)
		if err != nil && n == 0 {
			hubhttp.WriteError(w, err)
			return
		}
		if err != nil {
			h.log.Warn().Err(err).Msg("subscribe: partial cluster answer")
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]int{"changed": n})
	}
}

func (h *Handler) channels(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	list, err := hb.Channels(r.Context(), hub.ChannelsQuery{Prefix: r.URL.Query().Get("prefix")})
	if err != nil {
		h.log.Warn().Err(err).Msg("channels: partial cluster answer")
	}
	pageNum, pageSize := httpx.PageParams(r)
	httpx.WriteJSON(w, http.StatusOK, httpx.PageOf(list, pageNum, pageSize))
}

// presence lists every connection of the channel, cluster-wide, to count
// its users: its cost grows with the channel, not with the page.
func (h *Handler) presence(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	name := r.PathValue("name")
	list, err := hb.Connections(r.Context(), hub.ConnectionQuery{Channel: name})
	if err != nil {
		h.log.Warn().Err(err).Msg("presence: partial cluster answer")
	}
	pageNum, pageSize := httpx.PageParams(r)
	httpx.WriteJSON(w, http.StatusOK, Presence{
		Channel:     name,
		Connections: len(list),
		Users:       usersOf(list),
		Page:        httpx.PageOf(list, pageNum, pageSize),
	})
}

// usersOf lists the users with an id among conns, by id, with their
// connection counts.
func usersOf(conns []hub.ConnectionInfo) []hub.UserInfo {
	byID := map[string]int{}
	users := []hub.UserInfo{}
	for _, c := range conns {
		if c.AccessUserID == "" {
			continue
		}
		if i, ok := byID[c.AccessUserID]; ok {
			users[i].Connections++
			continue
		}
		byID[c.AccessUserID] = len(users)
		users = append(users, hub.UserInfo{ID: c.AccessUserID, Name: c.AccessUserName, TenantID: c.AccessTenantID, Connections: 1})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	return users
}

// HistoryPage is the answer of GET …/channels/{name}/history: the entries
// of a channel's stream after a position, oldest first.
type HistoryPage struct {
	Channel string `json:"channel"`
	// Epoch and Top are the stream's current epoch and last offset.
	Epoch string `json:"epoch"`
	Top   uint64 `json:"top"`
	// More says entries follow the last one: ask again with after= its
	// offset.
	More bool `json:"more"`
	// Gap says why the entries do not start right after the position
	// asked for: trimmed, expired or epoch (the position is of another
	// epoch); empty when they do.
	Gap  string         `json:"gap,omitempty"`
	List []HistoryEntry `json:"list"`
}

// HistoryEntry is one event of a stream's history.
type HistoryEntry struct {
	Offset uint64 `json:"offset"`
	Event  string `json:"event"`
	Data   string `json:"data"`
	// Time is when it was published, in Unix milliseconds.
	Time int64 `json:"time"`
}

// maxHistoryPage bounds limit=.
const maxHistoryPage = 1000

// history pages a channel's stream: after= an offset (default 0: from the
// oldest kept), epoch= the epoch that offset is of (default the current
// one), limit= (default 100, at most 1000).
func (h *Handler) history(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	name, q := r.PathValue("name"), r.URL.Query()
	after, err := strconv.ParseUint(cmp.Or(q.Get("after"), "0"), 10, 64)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "after: not an offset")
		return
	}
	limit, err := strconv.Atoi(cmp.Or(q.Get("limit"), "100"))
	if err != nil || limit < 1 || limit > maxHistoryPage {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit: 1 to %d", maxHistoryPage))
		return
	}
	res, err := hb.ReadHistory(r.Context(), hub.StreamChannelPrefix+name, history.Position{Offset: after, Epoch: q.Get("epoch")}, limit)
	if err != nil {
		hubhttp.WriteError(w, err)
		return
	}
	page := HistoryPage{Channel: name, Epoch: res.Top.Epoch, Top: res.Top.Offset, More: res.More, Gap: string(res.Gap),
		List: make([]HistoryEntry, 0, len(res.Entries))}
	for _, e := range res.Entries {
		page.List = append(page.List, HistoryEntry{Offset: e.Offset, Event: e.Event, Data: e.Data, Time: e.Time.UnixMilli()})
	}
	httpx.WriteJSON(w, http.StatusOK, page)
}

package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/hub"
)

// call makes an API call that must answer want and decodes the answer
// into out, when not nil.
func (n *node) call(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	status, answer := n.do(t, method, "/api/v1/apps/demo/"+path, body)
	if status != want {
		t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, status, answer, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(answer), out); err != nil {
			t.Fatalf("%s %s: answer %s: %v", method, path, answer, err)
		}
	}
}

// changed subscribes (or unsubscribes) and returns the answer's count.
func (n *node) changed(t *testing.T, op, body string) int {
	t.Helper()
	var res struct{ Changed *int }
	n.call(t, http.MethodPost, op, body, http.StatusOK, &res)
	if res.Changed == nil {
		t.Fatalf("%s %s: no changed in the answer", op, body)
	}
	return *res.Changed
}

// delivered sends to target and returns how many connections got it.
func (n *node) delivered(t *testing.T, target, data string) int {
	t.Helper()
	var res struct{ Delivered int }
	n.call(t, http.MethodPost, "send", `{"to":`+target+`,"event":"e","data":"`+data+`"}`, http.StatusOK, &res)
	return res.Delivered
}

// channelPage is the answer of GET …/channels.
type channelPage struct {
	Total int
	List  []hub.ChannelInfo
}

// TestServerSideSubscribe joins users to channels through the API, sends
// to the channels, lists them and their presence, and leaves them again.
func TestServerSideSubscribe(t *testing.T) {
	n := startNode(t, api.Config{})
	ann1, ann2, bob := n.events(t, "ann"), n.events(t, "ann"), n.events(t, "bob")

	if got := n.changed(t, "subscribe", `{"to":{"userIds":["ann"]},"channels":["room-1","room-2"]}`); got != 2 {
		t.Fatalf("subscribe ann: changed %d, want 2", got)
	}
	if got := n.changed(t, "subscribe", `{"to":{"userIds":["ann"]},"channels":["room-1"]}`); got != 0 {
		t.Fatalf("subscribe ann again: changed %d, want 0", got)
	}
	if got := n.delivered(t, `{"channels":["room-1"]}`, "one"); got != 2 {
		t.Fatalf("send to room-1: delivered %d, want 2", got)
	}
	for _, s := range []<-chan string{ann1, ann2} {
		if e := next(t, s); e != "e one" {
			t.Fatalf("ann got %q", e)
		}
	}
	if got := n.changed(t, "subscribe", `{"to":{"userIds":["bob"]},"channels":["room-1"]}`); got != 1 {
		t.Fatalf("subscribe bob: changed %d, want 1", got)
	}

	var all channelPage
	n.call(t, http.MethodGet, "channels", "", http.StatusOK, &all)
	want := []hub.ChannelInfo{{Name: "room-1", Connections: 3, Users: 2}, {Name: "room-2", Connections: 2, Users: 1}}
	if all.Total != 2 || len(all.List) != 2 || all.List[0] != want[0] || all.List[1] != want[1] {
		t.Fatalf("channels: %+v, want %+v", all, want)
	}
	var page channelPage
	n.call(t, http.MethodGet, "channels?prefix=room-2", "", http.StatusOK, &page)
	if page.Total != 1 || len(page.List) != 1 || page.List[0] != want[1] {
		t.Fatalf("channels?prefix=room-2: %+v", page)
	}
	n.call(t, http.MethodGet, "channels?pageNum=2&pageSize=1", "", http.StatusOK, &page)
	if page.Total != 2 || len(page.List) != 1 || page.List[0] != want[1] {
		t.Fatalf("channels page 2: %+v", page)
	}

	var p api.Presence
	n.call(t, http.MethodGet, "channels/room-1/presence", "", http.StatusOK, &p)
	if p.Channel != "room-1" || p.Connections != 3 || p.Total != 3 || len(p.List) != 3 || len(p.Users) != 2 ||
		p.Users[0].ID != "ann" || p.Users[0].Connections != 2 || p.Users[1].ID != "bob" || p.Users[1].Connections != 1 {
		t.Fatalf("presence: %+v", p)
	}
	for _, c := range p.List {
		if len(c.Channels) == 0 || (c.AccessUserID == "bob") != (len(c.Channels) == 1) {
			t.Errorf("presence connection %s of %s in %q", c.ID, c.AccessUserID, c.Channels)
		}
	}
	all3 := p.List
	for i := range 3 {
		var page api.Presence
		n.call(t, http.MethodGet, fmt.Sprintf("channels/room-1/presence?pageNum=%d&pageSize=1", i+1), "", http.StatusOK, &page)
		if page.Connections != 3 || page.Total != 3 || len(page.List) != 1 || page.List[0].ID != all3[i].ID || len(page.Users) != 2 {
			t.Fatalf("presence page %d: %+v", i+1, page)
		}
	}

	if got := n.changed(t, "unsubscribe", `{"to":{"userIds":["ann"]},"channels":["room-1"]}`); got != 2 {
		t.Fatalf("unsubscribe ann: changed %d, want 2", got)
	}
	if got := n.changed(t, "unsubscribe", `{"to":{"userIds":["ann"]},"channels":["room-1"]}`); got != 0 {
		t.Fatalf("unsubscribe ann again: changed %d, want 0", got)
	}
	if got := n.delivered(t, `{"channels":["room-1"]}`, "two"); got != 1 {
		t.Fatalf("send to room-1 after unsubscribe: delivered %d, want 1", got)
	}
	if e := next(t, bob); e != "e two" {
		t.Fatalf("bob got %q", e)
	}
	// Ann's next event is a later send to her: the channel's did not come.
	n.delivered(t, `{"userIds":["ann"]}`, "three")
	for _, s := range []<-chan string{ann1, ann2} {
		if e := next(t, s); e != "e three" {
			t.Fatalf("ann got %q after leaving room-1", e)
		}
	}
	n.call(t, http.MethodGet, "channels/room-1/presence", "", http.StatusOK, &p)
	if p.Connections != 1 || len(p.Users) != 1 || p.Users[0].ID != "bob" {
		t.Fatalf("presence after unsubscribe: %+v", p)
	}
}

// TestSubscribeBadInput checks what …/subscribe, …/channels and
// …/presence refuse, and that a refused call changes nothing.
func TestSubscribeBadInput(t *testing.T) {
	n := startNode(t, api.Config{})
	n.events(t, "ann")
	names := make([]string, 17) // one over the hub's default bound
	for i := range names {
		names[i] = fmt.Sprintf(`"c%d"`, i)
	}
	many := strings.Join(names, ",")
	for _, tc := range []struct{ op, body, text string }{
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":[]}`, "no channel"},
		{"subscribe", `{"to":{"userIds":["ann"]}}`, "no channel"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":[""]}`, "empty name"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":["a\nb"]}`, "control characters"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":["a\tb"]}`, "control characters"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":["ok","\u0085"]}`, "control characters"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":["` + strings.Repeat("x", 129) + `"]}`, "longer than 128"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":[` + many + `]}`, "at most 16"},
		{"subscribe", `{"to":{},"channels":["room"]}`, "nobody"},
		{"subscribe", `{"channels":["room"]}`, "nobody"},
		{"subscribe", `{"to":{"userIds":["ann"]},"channels":["room"],"extra":1}`, "unknown field"},
		{"unsubscribe", `{"to":{"userIds":["ann"]},"channels":"room"}`, "malformed JSON"},
		{"unsubscribe", ``, "empty body"},
	} {
		status, answer := n.do(t, http.MethodPost, "/api/v1/apps/demo/"+tc.op, tc.body)
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(answer), &e); status != http.StatusBadRequest || err != nil || !strings.Contains(e.Error, tc.text) {
			t.Errorf("%s %s: %d %s, want 400 with %q", tc.op, tc.body, status, answer, tc.text)
		}
	}
	var page channelPage
	n.call(t, http.MethodGet, "channels", "", http.StatusOK, &page)
	if page.Total != 0 || page.List == nil || len(page.List) != 0 {
		t.Fatalf("channels after refused calls: %+v", page)
	}
	var p api.Presence
	n.call(t, http.MethodGet, "channels/nowhere/presence", "", http.StatusOK, &p)
	if p.Channel != "nowhere" || p.Connections != 0 || p.Users == nil || len(p.Users) != 0 || p.List == nil || len(p.List) != 0 {
		t.Fatalf("presence of an empty channel: %+v", p)
	}
	if status, _ := n.do(t, http.MethodGet, "/api/v1/apps/nope/channels", ""); status != http.StatusNotFound {
		t.Errorf("unknown app: %d", status)
	}
	if status, _ := n.do(t, http.MethodPost, "/api/v1/apps/nope/subscribe", `{"to":{"all":true},"channels":["x"]}`); status != http.StatusNotFound {
		t.Errorf("unknown app: %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/apps/demo/subscribe", strings.NewReader(`{"to":{"all":true},"channels":["x"]}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("subscribe without a key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if status, _ := n.do(t, http.MethodGet, "/api/v1/apps/demo/channels/a/b/presence", ""); status != http.StatusNotFound {
		t.Errorf("presence path with a slash: %d", status)
	}
}

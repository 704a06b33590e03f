package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

// grantsUser is headerUser plus the channel grants of X-Grants (comma
// separated), as a JWT's channels claim would give them.
var grantsUser = auth.Func(func(r *http.Request) (hub.User, error) {
	u, err := headerUser(r)
	if g := r.Header.Get("X-Grants"); g != "" && err == nil {
		u.Channels = strings.Split(g, ",")
	}
	return u, err
})

// askYes is the backend of webhook namespaces: it allows "ask.yes" only.
type askYes struct{}

func (askYes) MayJoin(_ context.Context, _ string, _ hub.User, _, channel string) (bool, error) {
	return channel == "ask.yes", nil
}

func newChannelApp(t *testing.T) *testApp {
	t.Helper()
	policy, err := channels.New(channels.Config{Webhook: askYes{}, Namespaces: []channels.Namespace{
		{Prefix: "pub.", Join: channels.Public},
		{Match: "t/{tenant}/*", Join: channels.Public},
		{Prefix: "team.", Join: channels.Identity},
		{Prefix: "ask.", Join: channels.Webhook},
		{Prefix: "srv.", Join: channels.Server},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return newTestApp(t, hub.Config{Writers: -1}, web.Config{Auth: grantsUser, Channels: policy})
}

// joinCase is one browser join attempt and whether the policy allows it.
type joinCase struct {
	what, user, grants, channel string
	allowed                     bool
}

var joinCases = []joinCase{
	{"public", "ann@acme", "", "pub.news", true},
	{"own tenant's channel", "ann@acme", "", "t/acme/board", true},
	{"another tenant's channel", "ann@acme", "", "t/globex/board", false},
	{"identity, granted by name", "ann@acme", "team.red", "team.red", true},
	{"identity, granted by pattern", "ann@acme", "team.*", "team.blue", true},
	{"identity, not granted", "ann@acme", "team.red", "team.blue", false},
	{"webhook, allowed", "ann@acme", "", "ask.yes", true},
	{"webhook, refused", "ann@acme", "", "ask.no", false},
	{"server only", "ann@acme", "team.*", "srv.ops", false},
	{"in no namespace", "ann@acme", "", "random", false},
}

// Attack (issue 14): a browser asks to join channels it may not be in, at
// connect with channel= (the seed's), with channels=a,b and later with
// subscribe.do. Each refusal is a 403 with a JSON error naming the channel,
// and the connection is in none of the refused channels; the permitted
// ways work.
func TestBrowserJoinsAreAuthorized(t *testing.T) {
	a := newChannelApp(t)
	ctx := context.Background()
	for _, tc := range joinCases {
		for _, path := range []string{"channel", "channels", "subscribe.do"} {
			name := tc.what + " via " + path
			header := []string{"X-User", tc.user}
			if tc.grants != "" {
				header = append(header, "X-Grants", tc.grants)
			}
			var status int
			var body string
			if path == "subscribe.do" {
				s := a.connectAs(t, tc.user, "")
				b := fmt.Sprintf(`{"connectionId":%q,"channels":[%q]}`, s.id, tc.channel)
				status, _, body = call(t, http.MethodPost, a.base+"/connect/subscribe.do", "application/json", strings.NewReader(b), header...)
				s.resp.Body.Close()
			} else {
				q := url.Values{path: {tc.channel}}
				if path == "channels" {
					q.Set(path, "pub.lobby,"+tc.channel)
				}
				req, _ := http.NewRequest(http.MethodGet, a.base+"/connect?"+q.Encode(), nil)
				for i := 0; i < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				if tc.allowed {
					s := connect(t, req)
					s.resp.Body.Close()
					status = http.StatusOK
				} else {
					status, _, body = call(t, http.MethodGet, req.URL.String(), "", nil, header...)
				}
			}
			if tc.allowed {
				if status != http.StatusOK {
					t.Errorf("%s: %d %s, want it allowed", name, status, body)
				}
				continue
			}
			jsonError(t, name, http.StatusForbidden, status, body)
			if !strings.Contains(body, tc.channel) {
				t.Errorf("%s: the refusal %s does not name the channel", name, body)
			}
		}
		// Nothing refused left a member behind.
		if !tc.allowed {
			if n, err := a.hub.Send(ctx, hub.Target{Channels: []string{tc.channel}}, hub.Event{Name: "e", Data: "x"}); n != 0 || err != nil {
				t.Errorf("%s: a send to %s reached %d connections (%v), want 0", tc.what, tc.channel, n, err)
			}
		}
	}
}

// A connection in three channels receives each one's sends, and after
// unsubscribe.do of one no more of it; a connection of another user cannot
// be moved.
func TestSubscribeUnsubscribeDo(t *testing.T) {
	a := newChannelApp(t)
	ctx := context.Background()
	s := a.connectAs(t, "ann@acme", "channel=pub.a")
	do := func(kind, user, body string) (int, string) {
		status, _, b := call(t, http.MethodPost, a.base+"/connect/"+kind+".do", "application/json", strings.NewReader(body), "X-User", user)
		return status, b
	}
	status, body := do("subscribe", "ann@acme", fmt.Sprintf(`{"connectionId":%q,"channels":["pub.b","t/acme/c"]}`, s.id))
	var ok struct {
		Data struct{ Channels []string } `json:"data"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ok) != nil || strings.Join(ok.Data.Channels, " ") != "pub.a pub.b t/acme/c" {
		t.Fatalf("subscribe.do: %d %s", status, body)
	}
	for _, ch := range []string{"pub.a", "pub.b", "t/acme/c"} {
		if n, err := a.hub.Send(ctx, hub.Target{Channels: []string{ch}}, hub.Event{Name: "to-" + ch, Data: "x"}); n != 1 || err != nil {
			t.Fatalf("send to %s = %d, %v", ch, n, err)
		}
		if f := s.frame(t); !strings.Contains(f, "event:to-"+ch) {
			t.Fatalf("frame %q, want event to-%s", f, ch)
		}
	}
	status, body = do("unsubscribe", "bob@acme", fmt.Sprintf(`{"connectionId":%q,"channels":["pub.b"]}`, s.id))
	jsonError(t, "bob's unsubscribe of ann's connection", http.StatusNotFound, status, body)
	if status, body = do("unsubscribe", "ann@acme", fmt.Sprintf(`{"connectionId":%q,"channels":["pub.b"]}`, s.id)); status != http.StatusOK {
		t.Fatalf("unsubscribe.do: %d %s", status, body)
	}
	if n, _ := a.hub.Send(ctx, hub.Target{Channels: []string{"pub.b"}}, hub.Event{Name: "late", Data: "x"}); n != 0 {
		t.Fatalf("send to pub.b after unsubscribe reached %d", n)
	}
	for _, bad := range []string{`{"connectionId":"x"}`, `{"channels":["pub.a"]}`} {
		status, body := do("subscribe", "ann@acme", bad)
		jsonError(t, "subscribe.do "+bad, http.StatusBadRequest, status, body)
	}
}

// Without a channel policy a browser joins only what its identity names.
func TestNoPolicyJoinsOnlyGrants(t *testing.T) {
	a := newTestApp(t, hub.Config{Writers: -1}, web.Config{Auth: grantsUser})
	status, _, body := call(t, http.MethodGet, a.base+"/connect?channel=news", "", nil, "X-User", "ann@acme")
	jsonError(t, "channel= without a policy", http.StatusForbidden, status, body)
	req, _ := http.NewRequest(http.MethodGet, a.base+"/connect?channel=news", nil)
	req.Header.Set("X-User", "ann@acme")
	req.Header.Set("X-Grants", "news,team.*")
	s := connect(t, req)
	if n, _ := a.hub.Send(context.Background(), hub.Target{Channels: []string{"news"}}, hub.Event{Name: "e", Data: "x"}); n != 1 {
		t.Fatalf("the granted channel reached %d connections, want 1", n)
	}
	s.resp.Body.Close()
}

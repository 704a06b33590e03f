package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/client"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

func newPushd(t *testing.T, withQoS bool, wrap func(http.Handler) http.Handler) *pushd {
	t.Helper()
	p, err := startPushd(withQoS, wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connect(t *testing.T, p *pushd, query string) *stream {
	t.Helper()
	s, err := p.connect(query)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func await(t *testing.T, s *stream, want string) {
	t.Helper()
	if err := s.await(want); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []client.Config{
		{App: "hr", APIKey: "key"},
		{URL: "http://pushd", APIKey: "key"},
		{URL: "http://pushd", App: "hr"},
		{URL: "pushd:8080", App: "hr", APIKey: "key"},
		{URL: "ftp://pushd", App: "hr", APIKey: "key"},
		{URL: "http://", App: "hr", APIKey: "key"},
		{URL: "http://pushd", App: "hr", APIKey: "key", Retries: -2},
		{URL: "http://pushd", App: "hr", APIKey: "key", RetryWait: -time.Second},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestSend covers Send with every target kind, listening, QoS and async,
// and the SendTo helpers, each checked on the receiving streams.
func TestSend(t *testing.T) {
	p := newPushd(t, true, nil)
	c := newClient(t, client.Config{URL: p.URL + "/", App: "hr", APIKey: "key"})
	ctx := context.Background()
	ann := connect(t, p, "userId=ann&tenantId=acme&accessToken=tok-ann&channel=news&listeners=bell")
	bob := connect(t, p, "userId=bob&tenantId=acme")
	cy := connect(t, p, "userId=cy&tenantId=other")

	helpers := []struct {
		name string
		send func() (int, error)
		want int
		got  []*stream
	}{
		{"SendToUser", func() (int, error) { return c.SendToUser(ctx, "ann", "e", map[string]int{"n": 1}) }, 1, []*stream{ann}},
		{"SendToToken", func() (int, error) { return c.SendToToken(ctx, "tok-ann", "e", map[string]int{"n": 2}) }, 1, []*stream{ann}},
		{"SendToTenant", func() (int, error) { return c.SendToTenant(ctx, "acme", "e", map[string]int{"n": 3}) }, 2, []*stream{ann, bob}},
		{"SendToChannel", func() (int, error) { return c.SendToChannel(ctx, "news", "e", map[string]int{"n": 4}) }, 1, []*stream{ann}},
		{"SendToAll", func() (int, error) { return c.SendToAll(ctx, "e", map[string]int{"n": 5}) }, 3, []*stream{ann, bob, cy}},
	}
	for i, h := range helpers {
		n, err := h.send()
		if err != nil || n != h.want {
			t.Fatalf("%s = %d, %v; want %d", h.name, n, err, h.want)
		}
		for _, s := range h.got {
			await(t, s, `data:{"n":`+strconv.Itoa(i+1)+`}`)
		}
	}

	conns, err := c.Connections(ctx, "cy", 1, 10)
	if err != nil || len(conns.List) != 1 {
		t.Fatalf("Connections(cy) = %+v, %v", conns, err)
	}
	sends := []struct {
		name  string
		m     client.Message
		want  int
		to    *stream
		line  string
		check func(client.SendResult) bool
	}{
		{"raw string", client.Message{To: client.Target{UserIDs: []string{"bob"}}, Event: "e", Data: "plain text"}, 1, bob, "data:plain text", nil},
		{"raw JSON", client.Message{To: client.Target{UserIDs: []string{"bob"}}, Event: "e", Data: json.RawMessage(`[1, 2]`)}, 1, bob, "data:[1,2]", nil},
		{"connection id", client.Message{To: client.Target{ConnectionIDs: []string{conns.List[0].ID}}, Event: "e", Data: "by id"}, 1, cy, "data:by id", nil},
		{"listening", client.Message{To: client.Target{TenantIDs: []string{"acme"}, Listening: true}, Event: "bell", Data: "ring"}, 1, ann, "data:ring", nil},
		{"qos", client.Message{To: client.Target{UserIDs: []string{"bob"}}, Event: "e", Data: "kept", QoS: true, TTL: "1h"}, 1, bob, "data:kept",
			func(r client.SendResult) bool { return r.Stored && r.ID != "" && !r.Accepted }},
		{"async", client.Message{To: client.Target{UserIDs: []string{"cy"}}, Event: "e", Data: "later", Async: true}, 0, cy, "data:later",
			func(r client.SendResult) bool { return r.Accepted && r.ID != "" }},
	}
	for _, s := range sends {
		res, err := c.Send(ctx, s.m)
		if err != nil || res.Delivered != s.want || (s.check != nil && !s.check(res)) {
			t.Fatalf("Send %s = %+v, %v", s.name, res, err)
		}
		await(t, s.to, s.line)
	}
}

// TestSendBatch sends messages of every outcome in one call and checks
// each result and the order on the receiving streams.
func TestSendBatch(t *testing.T) {
	p := newPushd(t, true, nil)
	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	ann := connect(t, p, "userId=ann")
	bob := connect(t, p, "userId=bob")
	toAnn, toBob := client.Target{UserIDs: []string{"ann"}}, client.Target{UserIDs: []string{"bob"}}
	res, err := c.SendBatch(ctx, []client.Message{
		{To: toAnn, Event: "e", Data: "first"},
		{To: toBob, Event: "e", Data: map[string]int{"n": 1}},
		{To: toAnn, Event: "a\nb", Data: "refused"},
		{To: toAnn, Event: "e", Data: "stored", QoS: true, TTL: "1h"},
		{To: toBob, Event: "e", Data: "later", Async: true},
		{To: client.Target{UserIDs: []string{"nobody"}}, Event: "e"},
	})
	if err != nil || len(res) != 6 {
		t.Fatalf("SendBatch = %+v, %v", res, err)
	}
	for i, want := range []client.SendResult{{Delivered: 1}, {Delivered: 1}, {}, {Delivered: 1, Stored: true, ID: res[3].ID}, {ID: res[4].ID, Accepted: true}, {}} {
		if !reflect.DeepEqual(res[i].SendResult, want) || (res[i].Err != nil) != (i == 2) {
			t.Errorf("result %d = %+v; want %+v", i, res[i], want)
		}
	}
	wantStatus(t, "refused item", res[2].Err, http.StatusBadRequest, "CR, LF or NUL")
	if res[3].ID == "" || res[4].ID == "" {
		t.Errorf("no ids: %+v %+v", res[3], res[4])
	}
	seen, err := ann.until("data:stored")
	if err != nil || !slices.Contains(seen, "data:first") || slices.Contains(seen, "data:refused") {
		t.Errorf("ann saw %q before the stored message (%v)", seen, err)
	}
	seen, err = bob.until("data:later")
	if err != nil || !slices.Contains(seen, `data:{"n":1}`) {
		t.Errorf("bob saw %q before the async message (%v)", seen, err)
	}

	_, err = c.SendBatch(ctx, make([]client.Message, api.DefaultMaxBatch+1))
	wantStatus(t, "SendBatch beyond the bound", err, http.StatusRequestEntityTooLarge, "batch of more than")
	closed := newClient(t, client.Config{URL: "http://127.0.0.1:1", App: "hr", APIKey: "key"})
	if res, err := closed.SendBatch(ctx, nil); res != nil || err != nil {
		t.Errorf("empty SendBatch = %v, %v; want no call", res, err)
	}
}

// TestReads covers the list, count and presence calls and the fields of
// their answers.
func TestReads(t *testing.T) {
	p := newPushd(t, true, nil)
	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	connect(t, p, "userId=ann&tenantId=acme&name=Ann&channel=news&listeners=bell,news&clientId=web-1")
	connect(t, p, "userId=ann&tenantId=acme&name=Ann&clientId=web-2")
	connect(t, p, "userId=bob&tenantId=acme&name=Bob")
	connect(t, p, "userId=cy&tenantId=other&name=Cy&accessToken=tok-cy")

	users, err := c.Users(ctx, 1, 2)
	if err != nil || users.Total != 3 || users.PageNum != 1 || users.PageSize != 2 || len(users.List) != 2 {
		t.Fatalf("Users(1, 2) = %+v, %v", users, err)
	}
	if u := users.List[0]; u.ID != "ann" || u.Name != "Ann" || u.TenantID != "acme" || u.Connections != 2 {
		t.Errorf("first user = %+v", u)
	}
	users, err = c.Users(ctx, 2, 2)
	if err != nil || users.PageNum != 2 || len(users.List) != 1 || users.List[0].ID != "cy" {
		t.Errorf("Users(2, 2) = %+v, %v", users, err)
	}
	users, err = c.SearchUsers(ctx, client.UsersQuery{Name: "bo"})
	if err != nil || users.Total != 1 || users.List[0].ID != "bob" || users.PageSize != 100 {
		t.Errorf("SearchUsers(bo) = %+v, %v", users, err)
	}

	conns, err := c.Connections(ctx, "ann", 0, 0)
	if err != nil || conns.Total != 2 || len(conns.List) != 2 {
		t.Fatalf("Connections(ann) = %+v, %v", conns, err)
	}
	conns, err = c.SearchConnections(ctx, client.ConnectionsQuery{ClientID: "web-1"})
	if err != nil || conns.Total != 1 {
		t.Fatalf("SearchConnections(clientId) = %+v, %v", conns, err)
	}
	cn := conns.List[0]
	if cn.ID == "" || cn.NodeID != "n1" || cn.CreateTime <= 0 || cn.Channel != "news" ||
		!reflect.DeepEqual(cn.Listeners, []string{"bell", "news"}) || cn.AccessUserID != "ann" ||
		cn.AccessUserName != "Ann" || cn.AccessTenantID != "acme" || cn.AccessUser.ID != "ann" ||
		cn.ClientID != "web-1" || cn.RequestIP == "" || cn.UserAgent == "" {
		t.Errorf("connection = %+v", cn)
	}
	byID, err := c.SearchConnections(ctx, client.ConnectionsQuery{ID: cn.ID})
	if err != nil || byID.Total != 1 || byID.List[0].ID != cn.ID {
		t.Errorf("SearchConnections(id) = %+v, %v", byID, err)
	}
	byName, err := c.SearchConnections(ctx, client.ConnectionsQuery{Name: "c", PageSize: 1})
	if err != nil || byName.Total != 1 || byName.List[0].AccessToken != "tok-cy" {
		t.Errorf("SearchConnections(name) = %+v, %v", byName, err)
	}

	st, err := c.Stats(ctx)
	if err != nil || st != (client.Stats{Connections: 4, Users: 3, AccessTokens: 1, Tenants: 2, Channels: 1}) {
		t.Errorf("Stats = %+v, %v", st, err)
	}
	for user, want := range map[string]bool{"bob": true, "dan": false} {
		if on, err := c.Online(ctx, user); err != nil || on != want {
			t.Errorf("Online(%s) = %v, %v; want %v", user, on, err, want)
		}
	}
}

// TestChannels joins users to channels and takes them out, and lists the
// channels and who is in one, checked on the streams.
func TestChannels(t *testing.T) {
	p := newPushd(t, false, nil)
	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	ann1 := connect(t, p, "userId=ann&name=Ann&tenantId=acme")
	ann2 := connect(t, p, "userId=ann&name=Ann&tenantId=acme")
	bob := connect(t, p, "userId=bob&name=Bob")
	ann := client.Target{UserIDs: []string{"ann"}}
	const odd = "room 2/é?" // escaped in the presence path

	if n, err := c.Subscribe(ctx, ann, "room-1", odd); err != nil || n != 2 {
		t.Fatalf("Subscribe(ann) = %d, %v; want 2", n, err)
	}
	if n, err := c.Subscribe(ctx, client.Target{UserIDs: []string{"bob"}}, "room-1"); err != nil || n != 1 {
		t.Fatalf("Subscribe(bob) = %d, %v; want 1", n, err)
	}
	if n, err := c.SendToChannel(ctx, odd, "e", "hello"); err != nil || n != 2 {
		t.Fatalf("SendToChannel = %d, %v; want 2", n, err)
	}
	await(t, ann1, "data:hello")
	await(t, ann2, "data:hello")

	list, err := c.Channels(ctx, client.ChannelsQuery{})
	want := []client.Channel{{Name: odd, Connections: 2, Users: 1}, {Name: "room-1", Connections: 3, Users: 2}}
	if err != nil || list.Total != 2 || !slices.Equal(list.List, want) {
		t.Fatalf("Channels = %+v, %v; want %+v", list, err, want)
	}
	list, err = c.Channels(ctx, client.ChannelsQuery{Prefix: "room-", PageNum: 1, PageSize: 1})
	if err != nil || list.Total != 1 || list.PageSize != 1 || !slices.Equal(list.List, want[1:]) {
		t.Fatalf("Channels(room-) = %+v, %v", list, err)
	}

	pr, err := c.Presence(ctx, odd, 0, 0)
	if err != nil || pr.Channel != odd || pr.Connections != 2 || pr.Total != 2 || len(pr.List) != 2 ||
		!reflect.DeepEqual(pr.Users, []client.User{{ID: "ann", Name: "Ann", TenantID: "acme", Connections: 2}}) {
		t.Fatalf("Presence(%q) = %+v, %v", odd, pr, err)
	}
	if cn := pr.List[0]; cn.AccessUserID != "ann" || !slices.Equal(cn.Channels, []string{odd, "room-1"}) || cn.Channel != odd {
		t.Errorf("presence connection = %+v", cn)
	}
	pr, err = c.Presence(ctx, "room-1", 2, 2)
	if err != nil || pr.Connections != 3 || len(pr.List) != 1 || pr.List[0].AccessUserID != "bob" || len(pr.Users) != 2 {
		t.Fatalf("Presence(room-1, page 2) = %+v, %v", pr, err)
	}

	if n, err := c.Unsubscribe(ctx, ann, "room-1", odd); err != nil || n != 2 {
		t.Fatalf("Unsubscribe(ann) = %d, %v; want 2", n, err)
	}
	if n, err := c.SendToChannel(ctx, "room-1", "e", "after"); err != nil || n != 1 {
		t.Fatalf("SendToChannel after Unsubscribe = %d, %v; want 1", n, err)
	}
	await(t, bob, "data:after")
	if _, err := c.SendToUser(ctx, "ann", "e", "marker"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stream{ann1, ann2} {
		if seen, err := s.until("data:marker"); err != nil || slices.Contains(seen, "data:after") {
			t.Errorf("ann after Unsubscribe: %q, %v", seen, err)
		}
	}
	pr, err = c.Presence(ctx, odd, 1, 10)
	if err != nil || pr.Connections != 0 || len(pr.Users) != 0 || len(pr.List) != 0 {
		t.Errorf("Presence(%q) after Unsubscribe = %+v, %v", odd, pr, err)
	}
}

// TestActs covers Disconnect and SetDuration, checked on the streams.
func TestActs(t *testing.T) {
	p := newPushd(t, false, nil)
	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	ann := connect(t, p, "userId=ann&tenantId=acme")
	bob := connect(t, p, "userId=bob&tenantId=acme")

	n, err := c.SetDuration(ctx, client.Target{UserIDs: []string{"bob"}}, 90)
	if err != nil || n != 1 {
		t.Fatalf("SetDuration(bob) = %d, %v", n, err)
	}
	await(t, bob, `data:{"duration":"90"}`)
	conns, err := c.Connections(ctx, "bob", 1, 1)
	if err != nil || len(conns.List) != 1 || conns.List[0].SessionDuration != 90 {
		t.Errorf("bob's connection after SetDuration = %+v, %v", conns, err)
	}
	if n, err := c.SetDuration(ctx, client.Target{UserIDs: []string{"dan"}}, 5); err != nil || n != 0 {
		t.Errorf("SetDuration(offline dan) = %d, %v; want 0, nil", n, err)
	}

	n, err = c.Disconnect(ctx, []string{"ann"}, nil, nil)
	if err != nil || n != 1 {
		t.Fatalf("Disconnect(ann) = %d, %v", n, err)
	}
	await(t, ann, "event:connect-close")
	n, err = c.Disconnect(ctx, nil, nil, []string{conns.List[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("Disconnect(bob's connection) = %d, %v", n, err)
	}
	await(t, bob, "event:connect-close")
}

// TestMessages covers the QoS backlog: fields, filters and paging.
func TestMessages(t *testing.T) {
	p := newPushd(t, true, nil)
	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	var ids []string
	for _, m := range []client.Message{
		{To: client.Target{UserIDs: []string{"ann"}}, Event: "bell", Data: map[string]int{"n": 1}},
		{To: client.Target{UserIDs: []string{"ann"}, TenantIDs: []string{"acme"}}, Event: "news", Data: "two"},
		{To: client.Target{Channels: []string{"ops"}}, Event: "bell", Data: "three", TTL: "1h"},
	} {
		m.QoS = true
		res, err := c.Send(ctx, m)
		if err != nil || !res.Stored {
			t.Fatalf("Send(%+v) = %+v, %v", m, res, err)
		}
		ids = append(ids, res.ID)
	}

	all, err := c.Messages(ctx, client.MessagesQuery{})
	if err != nil || all.Total != 3 || len(all.List) != 3 || all.PageNum != 1 || all.PageSize != 100 {
		t.Fatalf("Messages() = %+v, %v", all, err)
	}
	m := all.List[0]
	if m.ID != ids[0] || m.Event != "bell" || m.Data != `{"n":1}` || !reflect.DeepEqual(m.UserIDs, []string{"ann"}) ||
		m.CreatedAt.IsZero() || !m.ExpiresAt.After(m.CreatedAt) {
		t.Errorf("first message = %+v", m)
	}
	for _, tc := range []struct {
		q    client.MessagesQuery
		want []string
	}{
		{client.MessagesQuery{UserID: "ann"}, ids[:2]},
		{client.MessagesQuery{TenantID: "acme"}, ids[1:2]},
		{client.MessagesQuery{Channel: "ops"}, ids[2:]},
		{client.MessagesQuery{Event: "bell"}, []string{ids[0], ids[2]}},
		{client.MessagesQuery{UserID: "ann", Event: "news"}, ids[1:2]},
		{client.MessagesQuery{AccessToken: "nobody"}, nil},
		{client.MessagesQuery{PageNum: 2, PageSize: 2}, ids[2:]},
	} {
		page, err := c.Messages(ctx, tc.q)
		var got []string
		for _, m := range page.List {
			got = append(got, m.ID)
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Messages(%+v) = %v, %v; want %v", tc.q, got, err, tc.want)
		}
	}
}

// calls makes every method of c once, with valid arguments.
func calls(c *client.Client) map[string]func(context.Context) error {
	to := client.Target{UserIDs: []string{"ann"}}
	return map[string]func(context.Context) error{
		"Send": func(ctx context.Context) error {
			_, err := c.Send(ctx, client.Message{To: to, Event: "e", Data: "x"})
			return err
		},
		"SendBatch": func(ctx context.Context) error {
			_, err := c.SendBatch(ctx, []client.Message{{To: to, Event: "e", Data: "x"}})
			return err
		},
		"SendToUser":    func(ctx context.Context) error { _, err := c.SendToUser(ctx, "ann", "e", "x"); return err },
		"SendToToken":   func(ctx context.Context) error { _, err := c.SendToToken(ctx, "tok", "e", "x"); return err },
		"SendToTenant":  func(ctx context.Context) error { _, err := c.SendToTenant(ctx, "acme", "e", "x"); return err },
		"SendToChannel": func(ctx context.Context) error { _, err := c.SendToChannel(ctx, "news", "e", "x"); return err },
		"SendToAll":     func(ctx context.Context) error { _, err := c.SendToAll(ctx, "e", "x"); return err },
		"Users":         func(ctx context.Context) error { _, err := c.Users(ctx, 1, 10); return err },
		"SearchUsers": func(ctx context.Context) error {
			_, err := c.SearchUsers(ctx, client.UsersQuery{Name: "a"})
			return err
		},
		"Connections": func(ctx context.Context) error { _, err := c.Connections(ctx, "ann", 1, 10); return err },
		"SearchConnections": func(ctx context.Context) error {
			_, err := c.SearchConnections(ctx, client.ConnectionsQuery{ClientID: "web"})
			return err
		},
		"Stats":      func(ctx context.Context) error { _, err := c.Stats(ctx); return err },
		"Online":     func(ctx context.Context) error { _, err := c.Online(ctx, "ann"); return err },
		"Disconnect": func(ctx context.Context) error { _, err := c.Disconnect(ctx, []string{"ann"}, nil, nil); return err },
		"SetDuration": func(ctx context.Context) error {
			_, err := c.SetDuration(ctx, to, 10)
			return err
		},
		"Messages": func(ctx context.Context) error {
			_, err := c.Messages(ctx, client.MessagesQuery{UserID: "ann"})
			return err
		},
		"Subscribe":   func(ctx context.Context) error { _, err := c.Subscribe(ctx, to, "room"); return err },
		"Unsubscribe": func(ctx context.Context) error { _, err := c.Unsubscribe(ctx, to, "room"); return err },
		"Channels": func(ctx context.Context) error {
			_, err := c.Channels(ctx, client.ChannelsQuery{Prefix: "r"})
			return err
		},
		"Presence": func(ctx context.Context) error { _, err := c.Presence(ctx, "room", 1, 10); return err },
	}
}

// reads are the methods that are retried.
var reads = map[string]bool{"Users": true, "SearchUsers": true, "Connections": true,
	"SearchConnections": true, "Stats": true, "Online": true, "Messages": true, "Channels": true, "Presence": true}

func wantStatus(t *testing.T, what string, err error, status int, msg string) {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != status || !strings.Contains(apiErr.Message, msg) {
		t.Errorf("%s: %v; want a %d error with %q", what, err, status, msg)
	}
}

// TestErrors checks that every method reports a wrong key, an unknown app
// and bad input as an *APIError with pushd's status and message.
func TestErrors(t *testing.T) {
	p := newPushd(t, true, nil)
	ctx := context.Background()
	for name, call := range calls(newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "wrong"})) {
		wantStatus(t, name+" with a wrong key", call(ctx), http.StatusUnauthorized, "invalid API key")
	}
	for name, call := range calls(newClient(t, client.Config{URL: p.URL, App: "nope", APIKey: "key"})) {
		wantStatus(t, name+" for an unknown app", call(ctx), http.StatusNotFound, `unknown app "nope"`)
	}

	c := newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ann := client.Target{UserIDs: []string{"ann"}}
	bad := map[string]func() error{
		"no target": func() error { _, err := c.Send(ctx, client.Message{Event: "e"}); return err },
		"event with LF": func() error {
			_, err := c.Send(ctx, client.Message{To: ann, Event: "a\nb"})
			return err
		},
		"ttl without qos": func() error {
			_, err := c.Send(ctx, client.Message{To: ann, Event: "e", TTL: "1h"})
			return err
		},
		"bad ttl": func() error {
			_, err := c.Send(ctx, client.Message{To: ann, Event: "e", QoS: true, TTL: "soon"})
			return err
		},
		"data not JSON":       func() error { _, err := c.SendToUser(ctx, "ann", "e", func() {}); return err },
		"online without user": func() error { _, err := c.Online(ctx, ""); return err },
		"disconnect nobody":   func() error { _, err := c.Disconnect(ctx, nil, nil, nil); return err },
		"negative duration":   func() error { _, err := c.SetDuration(ctx, ann, -1); return err },
		"duration to nobody":  func() error { _, err := c.SetDuration(ctx, client.Target{}, 1); return err },
		"subscribe nobody":    func() error { _, err := c.Subscribe(ctx, client.Target{}, "room"); return err },
		"subscribe to none":   func() error { _, err := c.Subscribe(ctx, ann); return err },
		"unsubscribe bad name": func() error {
			_, err := c.Unsubscribe(ctx, ann, "a\nb")
			return err
		},
	}
	for what, call := range bad {
		err := call()
		if what == "data not JSON" {
			var apiErr *client.APIError
			if err == nil || errors.As(err, &apiErr) {
				t.Errorf("%s: %v; want an encoding error before any call", what, err)
			}
			continue
		}
		wantStatus(t, what, err, http.StatusBadRequest, "")
	}

	noQoS := newPushd(t, false, nil)
	c = newClient(t, client.Config{URL: noQoS.URL, App: "hr", APIKey: "key"})
	_, err := c.Send(ctx, client.Message{To: ann, Event: "e", QoS: true})
	wantStatus(t, "QoS send without a store", err, http.StatusNotImplemented, "")
	_, err = c.Messages(ctx, client.MessagesQuery{})
	wantStatus(t, "Messages without a store", err, http.StatusNotImplemented, "")
	var old *client.Error
	if !errors.As(err, &old) || old.Status != http.StatusNotImplemented {
		t.Errorf("errors.As with the old name client.Error: %v", err)
	}
}

// flaky fails the first fails API calls that reach it: with status (and
// a plain-text body) or, when status is 0, by dropping the connection.
type flaky struct {
	fails  atomic.Int64
	status int
	calls  atomic.Int64
}

func (f *flaky) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		f.calls.Add(1)
		if f.fails.Add(-1) < 0 {
			next.ServeHTTP(w, r)
			return
		}
		if f.status != 0 {
			http.Error(w, "overloaded", f.status)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

// retryClient is a client for p whose calls each open a new connection,
// so that net/http's own retry of a GET on a reused connection cannot
// add tries.
func retryClient(t *testing.T, p *pushd, retries int, wait time.Duration) *client.Client {
	return newClient(t, client.Config{URL: p.URL, App: "hr", APIKey: "key", Retries: retries, RetryWait: wait,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
}

// TestRetries checks that reads are tried again after a 502/503/504 or a
// dropped connection, and that sends, disconnects and duration changes
// are made exactly once.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, 0} {
		f := &flaky{status: status}
		p := newPushd(t, true, f.wrap)
		ann := connect(t, p, "userId=ann")
		for name, call := range calls(retryClient(t, p, 0, time.Millisecond)) {
			f.fails.Store(1)
			f.calls.Store(0)
			err := call(ctx)
			if reads[name] {
				if err != nil || f.calls.Load() != 2 {
					t.Errorf("%s after one failure (%d) = %v in %d tries; want success in 2", name, status, err, f.calls.Load())
				}
				continue
			}
			if err == nil || f.calls.Load() != 1 {
				t.Errorf("%s after one failure (%d) = %v in %d tries; want the failure after 1", name, status, err, f.calls.Load())
			}
			if status != 0 {
				wantStatus(t, name, err, status, "overloaded")
			}
		}
		// No refused send got through: the first data after connect-finish
		// is a marker sent once the server lets calls through.
		f.fails.Store(0)
		if _, err := retryClient(t, p, 0, 0).SendToUser(ctx, "ann", "e", "marker"); err != nil {
			t.Fatal(err)
		}
		seen, err := ann.until("data:marker")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(seen, "data:x") {
			t.Errorf("a send refused with %d reached the stream: %q", status, seen)
		}
	}

	f := &flaky{status: http.StatusServiceUnavailable}
	p := newPushd(t, true, f.wrap)
	for _, tc := range []struct {
		retries   int
		wantCalls int64
	}{{0, 3}, {-1, 1}, {4, 5}} {
		f.fails.Store(100)
		f.calls.Store(0)
		_, err := retryClient(t, p, tc.retries, time.Millisecond).Stats(ctx)
		wantStatus(t, "Stats always refused", err, http.StatusServiceUnavailable, "overloaded")
		if f.calls.Load() != tc.wantCalls {
			t.Errorf("Retries %d: %d tries, want %d", tc.retries, f.calls.Load(), tc.wantCalls)
		}
	}

	// The ctx bounds the wait between tries.
	f.fails.Store(100)
	f.calls.Store(0)
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := retryClient(t, p, 0, time.Hour).Users(ctx, 1, 1)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second || f.calls.Load() != 1 {
		t.Errorf("Users with a 1h retry wait and a 100ms ctx = %v after %v, %d tries", err, time.Since(start), f.calls.Load())
	}
	wantStatus(t, "Users cut short by its ctx", err, http.StatusServiceUnavailable, "overloaded")

	// Other errors are not retried.
	f = &flaky{status: http.StatusInternalServerError}
	f.fails.Store(1)
	p = newPushd(t, true, f.wrap)
	_, err = retryClient(t, p, 0, time.Millisecond).Stats(context.Background())
	wantStatus(t, "Stats with a 500", err, http.StatusInternalServerError, "overloaded")
	if f.calls.Load() != 1 {
		t.Errorf("a 500 was tried %d times, want 1", f.calls.Load())
	}
}

// fill sets every exported field of v, recursively, to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint64:
		v.SetUint(7)
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	default:
		panic("fill: no value for " + v.Type().String())
	}
}

// TestWireShapes checks that the client's types carry every JSON field of
// pushd's own types under the same name and shape, in the direction the
// data travels: each value with every field set goes through the other
// side's type and must come out equal.
func TestWireShapes(t *testing.T) {
	for _, tc := range []struct {
		from, to any
		ignore   string // a field the client leaves out
	}{
		{from: &hub.Result{}, to: &client.SendResult{}},
		{from: &hub.UserInfo{}, to: &client.User{}},
		{from: &hub.ConnectionInfo{}, to: &client.Connection{}},
		{from: &hub.Stats{}, to: &client.Stats{}},
		{from: &qos.Message{}, to: &client.StoredMessage{}},
		{from: &httpx.Page[hub.UserInfo]{}, to: &client.Page[client.User]{}, ignore: "timeout"},
		{from: &hub.ChannelInfo{}, to: &client.Channel{}},
		{from: &api.Presence{}, to: &client.Presence{}, ignore: "timeout"},
		{from: &client.Target{}, to: &hub.Target{}},
		{from: &client.Message{}, to: &api.SendRequest{}},
	} {
		fill(reflect.ValueOf(tc.from).Elem())
		in, err := json.Marshal(tc.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(in, tc.to); err != nil {
			t.Fatalf("%T into %T: %v", tc.from, tc.to, err)
		}
		out, err := json.Marshal(tc.to)
		if err != nil {
			t.Fatal(err)
		}
		var want, got map[string]any
		_ = json.Unmarshal(in, &want)
		_ = json.Unmarshal(out, &got)
		delete(want, tc.ignore)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T through %T:\n got %s\nwant %s", tc.from, tc.to, out, in)
		}
	}
}

// TestErrorText checks the message of answers without pushd's error JSON,
// as a proxy in front of pushd gives them.
func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		ctype, body string
		status      int
		want        string
	}{
		{"text/html", "<html><body>bad gateway</body></html>", http.StatusBadGateway, "Bad Gateway"},
		{"text/plain; charset=utf-8", " upstream timed out \n", http.StatusGatewayTimeout, "upstream timed out"},
		{"text/plain", "x" + strings.Repeat("é", 150), http.StatusTeapot, "x" + strings.Repeat("é", 99)}, // cut at 200 bytes, within a rune
		{"application/json", `{"message":"other shape"}`, http.StatusForbidden, "Forbidden"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.ctype)
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		c := newClient(t, client.Config{URL: srv.URL, App: "hr", APIKey: "key", Retries: -1})
		_, err := c.Stats(context.Background())
		srv.Close()
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Message != tc.want {
			t.Errorf("%s answer %q: %v; want %d %q", tc.ctype, tc.body, err, tc.status, tc.want)
		}
	}
}

package hub

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		n    uint64 // counter for frames without their own id
		want string
	}{
		{"counter", Event{Name: "chat", Data: "hi"}, 1, "event:chat\nid:1\ndata:hi\n\n"},
		{"counter 42", Event{Name: "chat", Data: "hi"}, 42, "event:chat\nid:42\ndata:hi\n\n"},
		{"empty data", Event{Name: "ping"}, 3, "event:ping\nid:3\ndata:\n\n"},
		{"json", Event{Name: "j", Data: `{"a":1}`}, 7, "event:j\nid:7\ndata:{\"a\":1}\n\n"},
		{"lf", Event{Name: "m", Data: "a\nb\nc"}, 1, "event:m\nid:1\ndata:a\ndata:b\ndata:c\n\n"},
		{"crlf", Event{Name: "m", Data: "a\r\nb"}, 1, "event:m\nid:1\ndata:a\ndata:b\n\n"},
		{"cr", Event{Name: "m", Data: "a\rb"}, 1, "event:m\nid:1\ndata:a\ndata:b\n\n"},
		{"mixed", Event{Name: "m", Data: "a\r\n\rb\n\nc"}, 1, "event:m\nid:1\ndata:a\ndata:\ndata:b\ndata:\ndata:c\n\n"},
		{"trailing lf", Event{Name: "m", Data: "a\n"}, 1, "event:m\nid:1\ndata:a\ndata:\n\n"},
		{"trailing cr", Event{Name: "m", Data: "a\r"}, 1, "event:m\nid:1\ndata:a\ndata:\n\n"},
		{"only crlf", Event{Name: "m", Data: "\r\n"}, 1, "event:m\nid:1\ndata:\ndata:\n\n"},
		{"qos id", Event{Name: "order", ID: "q0123456789abcdefghijklm", Data: "x"}, 9, "event:order\nid:q0123456789abcdefghijklm\ndata:x\n\n"},
		{"qos id lines", Event{Name: "o", ID: "q1", Data: "x\ny"}, 9, "event:o\nid:q1\ndata:x\ndata:y\n\n"},
		{"unicode", Event{Name: "ü", Data: "日本"}, 2, "event:ü\nid:2\ndata:日本\n\n"},
		// The tail outgrows the room the frame's one allocation has for
		// it: the head must stay as it was.
		{"many lines", Event{Name: "m", Data: strings.Repeat("x\n", 20)}, 5,
			"event:m\nid:5\n" + strings.Repeat("data:x\n", 20) + "data:\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := encodeEvent(tt.ev)
			if got := render(f, tt.n); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if f.counted != (tt.ev.ID == "") {
				t.Errorf("counted = %v for id %q", f.counted, tt.ev.ID)
			}
			if f.event != tt.ev.Name {
				t.Errorf("frame event = %q, want %q", f.event, tt.ev.Name)
			}
		})
	}
}

func TestEncodeControlFrames(t *testing.T) {
	h := newTestHub(t, Config{App: "demo", Writers: -1})
	c := &Conn{id: "CID"}
	tests := []struct {
		name string
		f    *frame
		n    uint64
		want string
	}{
		{"resend", encodeResend(Event{Name: "order", ID: "q42", Data: "a\nb"}), 5,
			"id:q42\nevent:order\n:resend\ndata:a\ndata:b\n\n"},
		{"close kicked", encodeConnectClose(c, ReasonKicked), 4,
			"event:connect-close\nid:4\ndata:{\"connectionId\": \"CID\",\"reason\":\"kicked\"}\n\n"},
		{"close limit", encodeConnectClose(c, ReasonClientLimit), 1,
			"event:connect-close\nid:1\ndata:{\"connectionId\": \"CID\",\"reason\":\"client-limit\"}\n\n"},
		{"close client", encodeConnectClose(c, ReasonClientClose), 2,
			"event:connect-close\nid:2\ndata:{\"connectionId\": \"CID\",\"reason\":\"client-close\"}\n\n"},
		{"duration", encodeSetDuration(3600), 6,
			"event:sse-set-duration\nid:6\ndata:{\"duration\":\"3600\"}\n\n"},
		{"duration zero", encodeSetDuration(0), 1,
			"event:sse-set-duration\nid:1\ndata:{\"duration\":\"0\"}\n\n"},
		{"heartbeat", heartbeatFrame, 1, ":\n"},
		{"retry", encodeRetry(2500), 1, "retry:2500\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(tt.f, tt.n); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if f := encodeResend(Event{Name: "order", ID: "q42"}); f.qosID != "q42" || f.counted {
		t.Errorf("resend frame qosID %q counted %v", f.qosID, f.counted)
	}

	t.Run("connect-finish", func(t *testing.T) {
		c := mustConnect(t, h, connectReq("u1"))
		got, done := drainQueue(c)
		if done {
			t.Fatal("new connection is done")
		}
		// retry: is spread over [5000, 7500] ms; reconnectTime stays 5000.
		retry := regexp.MustCompile(`\nretry:(\d+)\n`).FindStringSubmatch(got)
		if ms, _ := strconv.Atoi(retry[1]); len(retry) < 2 || ms < 5000 || ms > 7500 {
			t.Fatalf("retry in %q, want 5000–7500 ms", got)
		}
		want := "id:" + c.ID() + "\nretry:" + retry[1] + "\nevent:connect-finish\ndata:{\"connectionId\":\"" + c.ID() +
			"\",\"serverTime\":" + strconv.FormatInt(c.CreatedAt().UnixMilli(), 10) +
			",\"reconnectTime\":5000,\"name\":\"demo\",\"enableCluster\":false,\"version\":\"" + Version + "\"}\n\n"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("connect-finish clustered", func(t *testing.T) {
		h := newTestHub(t, Config{App: `a"pp`, Writers: -1, ReconnectTime: 1500 * time.Millisecond, Transport: newFakeTransport()})
		c := mustConnect(t, h, ConnectRequest{})
		got, _ := drainQueue(c)
		_, data, _ := strings.Cut(got, "\ndata:")
		var d map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &d); err != nil {
			t.Fatalf("connect-finish data %q: %v", data, err)
		}
		if d["name"] != `a"pp` || d["enableCluster"] != true || d["reconnectTime"] != 1500.0 || d["connectionId"] != c.ID() {
			t.Errorf("connect-finish data = %v", d)
		}
		if !regexp.MustCompile(`\nretry:(1[5-9]\d\d|2[0-2]\d\d|2250)\n`).MatchString(got) {
			t.Errorf("connect-finish %q lacks a retry: of 1500–2250 ms", got)
		}
	})
}

func TestConnectCloseIsJSON(t *testing.T) {
	for _, id := range []string{"abc", `we"ird\id`} {
		got := render(encodeConnectClose(&Conn{id: id}, ReasonKicked), 1)
		_, data, _ := strings.Cut(got, "data:")
		var d struct {
			ConnectionID string `json:"connectionId"`
			Reason       string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &d); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if d.ConnectionID != id || d.Reason != "kicked" {
			t.Errorf("decoded %+v", d)
		}
		if !strings.HasPrefix(data, `{"connectionId": "`) {
			t.Errorf("no space after the colon: %q", data)
		}
	}
}

func TestEventValidate(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"plain", Event{Name: "a"}, true},
		{"id", Event{Name: "a", ID: "q1"}, true},
		{"data newlines", Event{Name: "a", Data: "x\r\ny\x00"}, true},
		{"colon name", Event{Name: "a:b"}, true},
		{"empty name", Event{}, false},
		{"empty name with data", Event{Data: "x"}, false},
		{"lf name", Event{Name: "a\nb"}, false},
		{"cr name", Event{Name: "a\rb"}, false},
		{"nul name", Event{Name: "a\x00b"}, false},
		{"injection", Event{Name: "x\ndata:evil\n\nevent:y"}, false},
		{"lf id", Event{Name: "a", ID: "1\n"}, false},
		{"cr id", Event{Name: "a", ID: "\r1"}, false},
		{"nul id", Event{Name: "a", ID: "1\x00"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Validate = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestNewEvent(t *testing.T) {
	tests := []struct {
		name string
		data any
		want string
	}{
		{"nil", nil, ""},
		{"string raw", `he said "hi"`, `he said "hi"`},
		{"json string stays raw", `{"a":1}`, `{"a":1}`},
		{"bytes", []byte("b\nc"), "b\nc"},
		{"raw message", json.RawMessage(`[1,2]`), `[1,2]`},
		{"int", 42, "42"},
		{"bool", true, "true"},
		{"map", map[string]any{"b": 2, "a": "x"}, `{"a":"x","b":2}`},
		{"struct", struct {
			A int    `json:"a"`
			B string `json:"b,omitempty"`
		}{A: 1}, `{"a":1}`},
		{"slice", []string{"x", "y"}, `["x","y"]`},
		{"html not escaped away", map[string]string{"h": "<b>"}, `{"h":"\u003cb\u003e"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := NewEvent("e", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Name != "e" || ev.ID != "" || ev.Data != tt.want {
				t.Errorf("got %+v, want data %q", ev, tt.want)
			}
		})
	}
	if _, err := NewEvent("", "x"); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := NewEvent("a\nb", "x"); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("LF name: %v", err)
	}
	if _, err := NewEvent("a", func() {}); err == nil || errors.Is(err, ErrInvalidEvent) {
		t.Errorf("unencodable data: %v", err)
	}
}

func TestDisconnectReasonNames(t *testing.T) {
	want := map[DisconnectReason]string{
		ReasonClientGone: "client-gone", ReasonClientClose: "client-close", ReasonKicked: "kicked",
		ReasonClientLimit: "client-limit", ReasonExpired: "expired", ReasonSlow: "slow",
		ReasonWriteError: "write-error", ReasonShutdown: "shutdown", ReasonTokenExpired: "token-expired",
		ReasonUserLimit: "user-limit", 0: "unknown", 200: "unknown",
	}
	for r, name := range want {
		if r.String() != name {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), name)
		}
	}
	if ReasonSlow.Error() != "hub: disconnected: slow" {
		t.Errorf("Error() = %q", ReasonSlow.Error())
	}
	tells := map[DisconnectReason]bool{ReasonClientClose: true, ReasonKicked: true, ReasonClientLimit: true,
		ReasonTokenExpired: true, ReasonUserLimit: true}
	for r := ReasonClientGone; r <= ReasonUserLimit; r++ {
		if r.tellsClient() != tells[r] {
			t.Errorf("%s.tellsClient() = %v", r, r.tellsClient())
		}
	}
}

func TestRoutingKeys(t *testing.T) {
	got := RoutingKeys(Target{UserIDs: []string{"1"}, AccessTokens: []string{"k"}, TenantIDs: []string{"t"},
		Channels: []string{"c"}, ConnectionIDs: []string{"x"}})
	want := []string{"u:1", "k:k", "t:t", "c:c", "x:x"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("RoutingKeys = %v, want %v", got, want)
	}
	if got := RoutingKeys(Target{All: true, UserIDs: []string{"1"}}); len(got) != 1 || got[0] != KeyAll {
		t.Errorf("RoutingKeys(all) = %v", got)
	}
	if !(Target{Listening: true}).IsZero() || (Target{Channels: []string{"c"}}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestUserMayActFor(t *testing.T) {
	owner := User{ID: "1", TenantID: "t", AccessToken: "k"}
	tests := []struct {
		u  User
		ok bool
	}{
		{User{ID: "1", TenantID: "t"}, true},
		{User{ID: "1", TenantID: "other"}, false},
		{User{ID: "2", TenantID: "t", AccessToken: "k"}, false},
		{User{AccessToken: "k"}, true},
		{User{AccessToken: "x"}, false},
		{User{}, false},
	}
	for _, tt := range tests {
		if got := tt.u.MayActFor(owner); got != tt.ok {
			t.Errorf("%+v.MayActFor = %v, want %v", tt.u, got, tt.ok)
		}
	}
	if (User{}).MayActFor(User{}) {
		t.Error("anonymous may act for anonymous")
	}
}

func TestConfigDefaults(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without App succeeded")
	}
	h := newTestHub(t, Config{App: "a", Writers: -1})
	c := h.cfg
	if c.QueueSize != 256 || c.Heartbeat != 25*time.Second || c.ReconnectTime != 5*time.Second ||
		c.MaxConnectionsPerClient != 3 || c.WriteTimeout != 10*time.Second || c.SurveyTimeout != 3*time.Second ||
		c.QoSTTL != 24*time.Hour || c.RedeliverAfter != 30*time.Second || c.NodeID != "n1" {
		t.Errorf("defaults: %+v", c)
	}
	if c.MaxConnectionsPerUser != 16 || c.ClientCapByDomain || c.MaxConnections != 100_000 || c.MaxListeners != 64 ||
		c.MaxNameLength != 128 || c.MaxKeepalive != 24*time.Hour {
		t.Errorf("limit defaults: %+v", c)
	}
	if h.pool != nil {
		t.Error("Writers -1 built a pool")
	}
	if h.App() != "a" || h.NodeID() != "n1" || h.Clustered() || h.QoSEnabled() {
		t.Error("accessors wrong")
	}
	h2, err := New(Config{App: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Shutdown(context.Background()) })
	if h2.pool == nil || h2.NodeID() == "" {
		t.Error("default hub has no pool or node id")
	}
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		app, max, client, want time.Duration
	}{
		{0, 0, 0, defaultClientKeepalive},
		{0, 0, time.Minute, time.Minute},
		{0, 0, -1, 24 * time.Hour}, // "unlimited" is capped by the default MaxKeepalive
		{0, 0, 48 * time.Hour, 24 * time.Hour},
		{0, time.Minute, time.Hour, time.Minute},
		{0, time.Minute, 0, time.Minute},
		{0, -1, -1, 0},
		{0, -1, 48 * time.Hour, 48 * time.Hour},
		{time.Hour, time.Minute, time.Minute, time.Hour},
		{time.Hour, 0, -1, time.Hour},
		{-1, 0, time.Minute, 0},
		{-1, 0, 0, 0},
	}
	for _, tt := range tests {
		h := newTestHub(t, Config{Writers: -1, Keepalive: tt.app, MaxKeepalive: tt.max})
		if got := h.lifetime(tt.client); got != tt.want {
			t.Errorf("app %v max %v client %v: lifetime %v, want %v", tt.app, tt.max, tt.client, got, tt.want)
		}
		c := mustConnect(t, h, ConnectRequest{Keepalive: tt.client})
		ci := c.Snapshot()
		if tt.want == 0 && (ci.ExpireTime != 0 || ci.Timeout != 0) {
			t.Errorf("app %v client %v: unlimited connection has expireTime %d timeout %d", tt.app, tt.client, ci.ExpireTime, ci.Timeout)
		}
		if tt.want > 0 && ci.Timeout != tt.want.Milliseconds() {
			t.Errorf("app %v client %v: timeout %d, want %d", tt.app, tt.client, ci.Timeout, tt.want.Milliseconds())
		}
	}
}

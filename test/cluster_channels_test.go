package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

func TestClusterChannelsRedis(t *testing.T) { testClusterChannels(t, "redis") }

func TestClusterChannelsNacos(t *testing.T) { testClusterChannels(t, "nacos") }

// presence is the answer of …/channels/{name}/presence.
type presence struct {
	Channel     string
	Connections int
	Users       []struct {
		ID          string
		Name        string
		Connections int
	}
	Total int
	List  []struct {
		ID       string
		ServerID string
		Channels []string
	}
}

// changed subscribes (op "subscribe") or unsubscribes through the API of
// base and returns the answer's count.
func changed(t *testing.T, base, op string, to map[string]any, channels ...string) int {
	t.Helper()
	var res struct{ Changed *int }
	apiJSON(t, base, http.MethodPost, op, map[string]any{"to": to, "channels": channels}, &res)
	if res.Changed == nil {
		t.Fatalf("%s via %s: no changed in the answer", op, base)
	}
	return *res.Changed
}

// testClusterChannels subscribes users on one node through the API of the
// other, sends to the channel from either node, and reads channels and
// presence across the two, on one transport.
func testClusterChannels(t *testing.T, transport string) {
	c := startCluster(t, transport, 2)
	a, b := c.nodes[0], c.nodes[1]
	ann := openStream(t, a.url+"/sse/demo/connect?userId=ann&name=Ann")
	annID := field(ann.frame(), "id")
	bob := openStream(t, b.url+"/sse/demo/connect?userId=bob&name=Bob")
	bob.frame()

	if n := changed(t, b.url, "subscribe", map[string]any{"userIds": []string{"ann"}}, "room-7"); n != 1 {
		t.Fatalf("subscribe ann (on A) via B: changed %d, want 1", n)
	}
	var p presence
	apiJSON(t, b.url, http.MethodGet, "channels/room-7/presence", nil, &p)
	if p.Channel != "room-7" || p.Connections != 1 || len(p.Users) != 1 || p.Users[0].ID != "ann" || p.Users[0].Name != "Ann" ||
		len(p.List) != 1 || p.List[0].ID != annID || p.List[0].ServerID != "n1" || fmt.Sprint(p.List[0].Channels) != "[room-7]" {
		t.Fatalf("presence of room-7 via B: %+v", p)
	}
	if got := clusterSend(t, b.url, map[string]any{"channels": []string{"room-7"}}, "chat", "one"); got.Delivered != 1 {
		t.Fatalf("send to room-7 via B: delivered %d, want 1", got.Delivered)
	}
	if f := ann.frame(); field(f, "event") != "chat" || field(f, "data") != "one" {
		t.Fatalf("ann got %q", f)
	}

	if n := changed(t, a.url, "subscribe", map[string]any{"userIds": []string{"bob"}}, "room-7", "room-8"); n != 1 {
		t.Fatalf("subscribe bob (on B) via A: changed %d, want 1", n)
	}
	// By connection id, from the node that does not hold it: already in.
	if n := changed(t, b.url, "subscribe", map[string]any{"connectionIds": []string{annID}}, "room-7"); n != 0 {
		t.Fatalf("subscribe ann's connection again via B: changed %d, want 0", n)
	}
	var list struct {
		Total int
		List  []struct {
			Name               string
			Connections, Users int
		}
	}
	apiJSON(t, a.url, http.MethodGet, "channels?prefix=room-", nil, &list)
	if b, _ := json.Marshal(list); list.Total != 2 || string(b) != `{"Total":2,"List":[{"Name":"room-7","Connections":2,"Users":2},{"Name":"room-8","Connections":1,"Users":1}]}` {
		t.Fatalf("channels via A: %s", b)
	}
	if got := clusterSend(t, a.url, map[string]any{"channels": []string{"room-7"}}, "chat", "two"); got.Delivered != 2 {
		t.Fatalf("send to room-7 via A: delivered %d, want 2", got.Delivered)
	}
	for _, s := range []*stream{ann, bob} {
		if f := s.frame(); field(f, "data") != "two" {
			t.Fatalf("room-7 frame %q", f)
		}
	}

	if n := changed(t, b.url, "unsubscribe", map[string]any{"connectionIds": []string{annID}}, "room-7"); n != 1 {
		t.Fatalf("unsubscribe ann's connection via B: changed %d, want 1", n)
	}
	if got := clusterSend(t, a.url, map[string]any{"channels": []string{"room-7"}}, "chat", "three"); got.Delivered != 1 {
		t.Fatalf("send to room-7 after ann left: delivered %d, want 1", got.Delivered)
	}
	if f := bob.frame(); field(f, "data") != "three" {
		t.Fatalf("bob got %q", f)
	}
	// Ann's next frame is this, not the channel's.
	clusterSend(t, b.url, map[string]any{"userIds": []string{"ann"}}, "direct", "four")
	if f := ann.frame(); field(f, "data") != "four" {
		t.Fatalf("ann after leaving room-7 got %q", f)
	}
	apiJSON(t, a.url, http.MethodGet, "channels/room-7/presence", nil, &p)
	if p.Connections != 1 || len(p.Users) != 1 || p.Users[0].ID != "bob" || len(p.List) != 1 || p.List[0].ServerID != "n2" {
		t.Fatalf("presence of room-7 via A after ann left: %+v", p)
	}
}

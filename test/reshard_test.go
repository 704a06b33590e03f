package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// reshardSend is one send through b as the test saw it.
type reshardSend struct {
	at        time.Duration // since the start of the traffic
	qos       bool
	data      string
	code      int
	stored    bool
	delivered int
	id        string
}

// Two pushd nodes on a real Redis Cluster (sharded pub/sub transport, QoS
// store); a browser-like stream on a; the slot of its user's routing key
// is moved to another master mid-traffic (CLUSTER SETSLOT/MIGRATE, as
// redis-cli --cluster reshard does). Sends through b keep reaching it:
// every QoS send answered 200 is stored and reaches the stream (zero
// loss), each send counts the stream at most once, a plain send answered
// delivered 1 arrives exactly once and one answered 0 never does. The
// recovery (how long sends counted nobody) is in the test output.
func TestTransportOnRedisClusterSlotMoved(t *testing.T) {
	rc := testredis.StartCluster(t)
	a, b := startPushd(t, clusterNodeConfig("a", rc.URL())), startPushd(t, clusterNodeConfig("b", rc.URL()))
	const key = "pushd:demo:u:zoe" // the routing key of the stream's user
	browser := followWith(t, http.DefaultClient, a.url+"/sse/demo/connect?userId=zoe&ack=1")
	resubscribesBefore := metric(t, a, resubscribesRe)

	var (
		mu    sync.Mutex
		sends []reshardSend
	)
	begin := time.Now()
	send := func(i int) {
		s := reshardSend{at: time.Since(begin), qos: i%2 == 0, data: fmt.Sprint("m", i)}
		code, body := apiCall(t, b.url, http.MethodPost, "send", map[string]any{
			"to": map[string]any{"userIds": []string{"zoe"}}, "event": "msg", "data": s.data, "qos": s.qos})
		s.code = code
		if code == http.StatusOK {
			var ans struct {
				ID        string
				Stored    bool
				Delivered int
			}
			if err := json.Unmarshal([]byte(body), &ans); err != nil {
				t.Errorf("send answer %s: %v", body, err)
			}
			s.id, s.stored, s.delivered = ans.ID, ans.Stored, ans.Delivered
		}
		mu.Lock()
		sends = append(sends, s)
		mu.Unlock()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the traffic: a send every 10 ms, QoS and plain by turns
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			send(i)
		}
	}()
	time.Sleep(time.Second) // traffic before the move
	to := rc.OtherMaster(key)
	moveStart := time.Since(begin)
	from := rc.MoveSlot(key, to)
	moveEnd := time.Since(begin)
	// The slot's channels on the old master are gone, so a's subscription
	// to it moved (OnResubscribe counts it).
	waitFor(t, 20*time.Second, func() error {
		if n := metric(t, a, resubscribesRe); n <= resubscribesBefore {
			return fmt.Errorf("a's resubscribes %d, not above %d: the move went unnoticed", n, resubscribesBefore)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // traffic after the move
	close(stop)
	<-done

	// Every QoS message answered 200 is stored and reaches the stream.
	stored := map[string]bool{}
	var lastMiss, back time.Duration = -1, -1
	missed := 0
	for _, s := range sends {
		switch {
		case s.code != http.StatusOK && s.qos && s.code == http.StatusServiceUnavailable:
		case s.code != http.StatusOK:
			t.Errorf("send %s at %v answered %d", s.data, s.at, s.code)
			continue
		case s.delivered > 1:
			t.Errorf("send %s at %v counted %d deliveries, want at most 1 (one stream)", s.data, s.at, s.delivered)
		case s.qos && (!s.stored || s.id == ""):
			t.Errorf("QoS send %s answered 200 but not stored: %+v", s.data, s)
		}
		if s.qos && s.stored {
			stored[s.id] = true
		}
		if s.code == http.StatusOK && s.delivered == 0 && s.at > moveStart {
			lastMiss = s.at
			missed++
		}
	}
	for _, s := range sends {
		if lastMiss >= 0 && s.at > lastMiss && s.code == http.StatusOK && s.delivered == 1 {
			back = s.at
			break
		}
	}
	waitFor(t, 20*time.Second, func() error {
		if miss := browser.missing(stored); len(miss) > 0 {
			return fmt.Errorf("%d of %d QoS messages answered 200 and stored never reached the stream: %v", len(miss), len(stored), miss)
		}
		return nil
	})
	// A plain send counted delivered 1 arrived once; one counted 0 never.
	got := browser.dataCounts("msg")
	plain, plainMissed := 0, 0
	for _, s := range sends {
		if s.qos || s.code != http.StatusOK {
			continue
		}
		plain++
		switch {
		case s.delivered == 1 && got[s.data] != 1:
			t.Errorf("plain send %s at %v answered delivered 1, arrived %d times", s.data, s.at, got[s.data])
		case s.delivered == 0 && got[s.data] != 0:
			t.Errorf("plain send %s at %v answered delivered 0, arrived %d times", s.data, s.at, got[s.data])
		case s.delivered == 0:
			plainMissed++
		}
	}
	dups := 0
	for _, n := range browser.idCounts("msg") {
		dups += max(0, n-1)
	}
	if n := shardNumSub(t, to, key); n != 1 {
		t.Errorf("SHARDNUMSUB %s on its new master %s = %d, want 1 (a's subscription)", key, to.Addr(), n)
	}
	recovery := "no send counted nobody"
	if back >= 0 {
		recovery = fmt.Sprintf("%d sends counted nobody, the last %v after the move began; routing back %v after the move began",
			missed, (lastMiss - moveStart).Round(time.Millisecond), (back - moveStart).Round(time.Millisecond))
	}
	t.Logf("RECOVERY: slot %d of %s moved from %s to %s in %v mid-traffic: %s. %d sends through b (%d QoS answered 200 and stored, "+
		"all on the stream; %d plain, %d of them delivered 0 and not received); %d QoS frames came twice (replayed after the move, dropped by clients by id)",
		rc.SlotOf(key), key, from.Addr(), to.Addr(), (moveEnd - moveStart).Round(time.Millisecond), recovery,
		len(sends), len(stored), plain, plainMissed, dups)
}

// metric returns the value of the counter re matches in n's /metrics.
func metric(t *testing.T, n *node, re interface{ FindStringSubmatch(string) []string }) int {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := re.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no such counter in %s/metrics", n.url)
	}
	var v int
	fmt.Sscan(m[1], &v)
	return v
}

// shardNumSub returns PUBSUB SHARDNUMSUB of channel on the master m.
func shardNumSub(t *testing.T, m *testredis.Server, channel string) int64 {
	t.Helper()
	subs, err := m.Client().PubSubShardNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatalf("SHARDNUMSUB on %s: %v", m.Addr(), err)
	}
	return subs[channel]
}

// dataCounts returns how many frames of event came with each data.
func (f *feed) dataCounts(event string) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, fr := range f.frames {
		if field(fr, "event") == event {
			n[strings.TrimSpace(field(fr, "data"))]++
		}
	}
	return n
}

// idCounts returns how many frames of event came with each id.
func (f *feed) idCounts(event string) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, fr := range f.frames {
		if id := field(fr, "id"); field(fr, "event") == event && id != "" {
			n[id]++
		}
	}
	return n
}

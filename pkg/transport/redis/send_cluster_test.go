package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

// userOn returns a user whose routing key's channel (under tr's prefix,
// app "app") is on the master m now.
func userOn(cl *testredis.Cluster, tr *Transport, m *testredis.Server, tag string) string {
	for i := 0; ; i++ {
		u := fmt.Sprintf("%s-%d", tag, i)
		if cl.NodeFor(tr.channel("app", "u:"+u)) == m {
			return u
		}
	}
}

// TestClusterSendPartlyToDeadMaster sends to two users whose routing keys
// are on different masters, from a node holding neither: holder a (its
// handler answers 1) holds both, holder c (answering 10) only the one on
// the master that is then killed (SIGKILL). Until the replica takes over,
// a send to both users counts a, reached on the healthy master's channel,
// waiting for its reply, and says it was partial (ErrPartial); a Survey
// gets a's reply and says so too; a send to the dead master's user alone,
// with a ctx without deadline, fails (not partial) by the sender's
// Config.Timeout. After the failover both holders are counted again and
// nothing is partial.
func TestClusterSendPartlyToDeadMaster(t *testing.T) {
	cl := testredis.StartCluster(t)
	prefix := testPrefix(t)
	fast := func(c *Config) {
		c.ProbeInterval = 200 * time.Millisecond
		c.ProbeTimeout = 500 * time.Millisecond
	}
	sender := startNodeURL(t, cl.URL(), prefix, "sender", 0, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	a := startNodeURL(t, cl.URL(), prefix, "a", 1, fast)
	c := startNodeURL(t, cl.URL(), prefix, "c", 10, fast)

	// The victim holds neither the sender's nor a's reply channel (three
	// masters, two channels): both stay ready and a's replies come back.
	senderReply, aReply := cl.NodeFor(sender.replyChannel), cl.NodeFor(a.replyChannel)
	var victim, healthy *testredis.Server
	for _, m := range cl.Masters() {
		if m != senderReply && m != aReply {
			victim = m
		}
	}
	for _, m := range cl.Masters() {
		if m != victim {
			healthy = m
		}
	}
	uHealthy, uDead := userOn(cl, a.Transport, healthy, "healthy"), userOn(cl, a.Transport, victim, "dead")
	for _, h := range []*node{a, c} {
		keys := []string{"u:" + uDead}
		if h == a {
			keys = append(keys, "u:"+uHealthy)
		}
		for _, k := range keys {
			h.SetInterest("app", k, true)
		}
		if err := h.AwaitInterest(context.Background(), "app", keys); err != nil {
			t.Fatalf("AwaitInterest %s: %v", h.cfg.NodeID, err)
		}
	}
	both := hub.Target{UserIDs: []string{uHealthy, uDead}}
	send := func(target hub.Target) (int, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		n, err := sender.Deliver(ctx, "app", target, hub.Event{Name: "e", Data: "x"})
		return n, time.Since(start), err
	}
	waitFor(t, 10*time.Second, "a send to both users counting both holders", func() bool {
		n, _, err := send(both)
		return err == nil && n == 11
	})

	deadKey := a.channel("app", "u:"+uDead)
	killed := cl.KillMaster(deadKey)
	start := time.Now()
	window := testredis.ClusterNodeTimeout * 2 / 3 // no replica is promoted before ClusterNodeTimeout
	sends := 0
	for time.Since(start) < window && sends < 3 {
		n, took, err := send(both)
		sends++
		if n != 1 || !errors.Is(err, ErrPartial) {
			t.Errorf("send %d to both users %v after the SIGKILL = %d, %v; want 1 (holder a, on the healthy master) and ErrPartial",
				sends, took.Round(time.Millisecond), n, err)
		}
		if took > 350*time.Millisecond {
			t.Errorf("send %d took %v, past its 300 ms ctx", sends, took.Round(time.Millisecond))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	replies, serr := sender.Survey(ctx, "app", hub.Request{Op: "count", Target: both})
	cancel()
	if len(replies) != 1 || replies[0].NodeID != "a" || !errors.Is(serr, ErrPartial) {
		t.Errorf("Survey of both users after the SIGKILL = %+v, %v; want a's reply alone and ErrPartial", replies, serr)
	}
	// A ctx without a deadline: the call ends at Config.Timeout, however
	// long the client would retry the dead master.
	bg := time.Now()
	n, err := sender.Deliver(context.Background(), "app", hub.Target{UserIDs: []string{uDead}}, hub.Event{Name: "e"})
	if took := time.Since(bg); n != 0 || err == nil || errors.Is(err, ErrPartial) || took > 350*time.Millisecond {
		t.Errorf("send without a deadline to the dead master's user alone = %d, %v after %v; want 0 and an error other than ErrPartial by Config.Timeout (300 ms)",
			n, err, took.Round(time.Millisecond))
	}
	if n, _, err := send(hub.Target{UserIDs: []string{uHealthy}}); n != 1 || err != nil {
		t.Errorf("send to the healthy master's user alone = %d, %v; want 1, nil", n, err)
	}
	if owner := cl.NodeFor(deadKey); owner != killed {
		t.Fatalf("the replica took over (%s owns %s) within %v: the sends above were not all before the failover",
			owner.Addr(), deadKey, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("%d sends to both users in the %v after the SIGKILL, before the failover", sends, time.Since(start).Round(time.Millisecond))

	cl.Failover(deadKey)
	waitFor(t, 30*time.Second, "a send to both users counting both holders again", func() bool {
		n, _, err := send(both)
		return err == nil && n == 11
	})
	t.Logf("both holders counted again %v after the SIGKILL", time.Since(start).Round(time.Millisecond))
}

package redisqos_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/qostest"
	"github.com/pushd/pushd/pkg/qos/redisqos"
)

var prefixSeq atomic.Int64

// uniquePrefix gives every repository of a test its own key space.
func uniquePrefix() string {
	return fmt.Sprintf("test%d", prefixSeq.Add(1))
}

func newRedisRepo(tb testing.TB, c redis.UniversalClient, prefix string) *redisqos.Store {
	tb.Helper()
	r, err := redisqos.New(redisqos.Config{Client: c, Prefix: prefix, MaxPerRecipient: qostest.MaxPerRecipient})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedisConformance(t *testing.T) {
	s := testredis.Start(t)
	c := s.Client()
	qostest.Run(t, func(t *testing.T) qos.Repository {
		return newRedisRepo(t, c, uniquePrefix())
	})
}

// TestRedisConformanceMiniredis runs the suite on miniredis too, so it
// runs on a machine without redis-server (where TestRedisConformance is
// skipped, or fails when CI is set).
func TestRedisConformanceMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	qostest.Run(t, func(t *testing.T) qos.Repository {
		return newRedisRepo(t, c, uniquePrefix())
	}, qostest.Skip("Expiry", "needs a real redis-server: miniredis expires keys only when its clock is fast-forwarded (TestRedisConformance runs it)"))
}

func TestNewValidates(t *testing.T) {
	if _, err := redisqos.New(redisqos.Config{}); err == nil {
		t.Fatal("New without client: no error")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisqos.New(redisqos.Config{Client: c, Prefix: "a{b"}); err == nil {
		t.Fatal("New with { in prefix: no error")
	}
	if _, err := redisqos.New(redisqos.Config{Client: c, MaxPerRecipient: -1}); err == nil {
		t.Fatal("New with negative bound: no error")
	}
}

func userMsg(event string, users ...string) qos.Message {
	return qos.Message{ID: qos.NewID(), Event: event, Data: event, UserIDs: users, ExpiresAt: time.Now().Add(time.Hour)}
}

// TestRedisSurvivesRestart kills redis-server (SIGKILL) after the saves and
// starts it again in the same directory: with AOF and fsync on every write,
// the messages and the acks are still there.
func TestRedisSurvivesRestart(t *testing.T) {
	s := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := s.Client()
	repo := newRedisRepo(t, c, "pushd")
	ctx := context.Background()

	direct := userMsg("direct", "u1")
	token := userMsg("token")
	token.AccessTokens = []string{"tok"}
	tenant := userMsg("tenant")
	tenant.TenantIDs = []string{"t1"}
	acked := userMsg("acked", "u1")
	for _, m := range []qos.Message{direct, token, tenant, acked} {
		if err := repo.Save(ctx, "demo", m); err != nil {
			t.Fatal(err)
		}
	}
	u1 := qos.Recipient{UserID: "u1", TenantID: "t1"}
	if n, err := repo.Ack(ctx, "demo", u1, acked.ID, tenant.ID); err != nil || n != 2 {
		t.Fatalf("Ack: %d, %v; want 2", n, err)
	}

	s.Kill()
	s.Start()

	got, err := repo.Pending(ctx, "demo", u1, "", 0)
	if err != nil {
		t.Fatalf("Pending after restart: %v", err)
	}
	if len(got) != 1 || got[0].ID != direct.ID || got[0].Data != "direct" {
		t.Fatalf("Pending u1 after restart: got %+v, want only %s", got, direct.ID)
	}
	got, err = repo.Pending(ctx, "demo", qos.Recipient{AccessToken: "tok", TenantID: "t1"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != token.ID || got[1].ID != tenant.ID {
		t.Fatalf("Pending tok after restart: got %v, want %s, %s", got, token.ID, tenant.ID)
	}
	// The acknowledged user message stays listed: u1 has a tenant, and a
	// user u1 of another tenant may still want it.
	if _, total, err := repo.List(ctx, "demo", qos.Filter{}, 0, 0); err != nil || total != 4 {
		t.Fatalf("List after restart: total %d, %v; want 4", total, err)
	}
}

// TestRedisSaveWhenDown: with redis-server gone, Save fails on its own (no
// caller deadline needed) and, once Redis is back, nothing of the failed
// message is found.
func TestRedisSaveWhenDown(t *testing.T) {
	s := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := s.Client()
	repo := newRedisRepo(t, c, "pushd")
	before := userMsg("before", "u1")
	if err := repo.Save(context.Background(), "demo", before); err != nil {
		t.Fatal(err)
	}
	s.Kill()

	failed := userMsg("failed", "u1")
	failed.TenantIDs = []string{"t1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := repo.Save(ctx, "demo", failed)
	t.Logf("Save with Redis down failed after %v: %v", time.Since(start), err)
	if err == nil {
		t.Fatal("Save with Redis down: no error")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save with Redis down only ended at the caller's deadline: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "redisqos: save") {
		t.Fatalf("error not wrapped with context: %v", err)
	}
	if _, err := repo.Pending(ctx, "demo", qos.Recipient{UserID: "u1"}, "", 0); err == nil {
		t.Fatal("Pending with Redis down: no error")
	}

	s.Start()
	got, err := repo.Pending(ctx, "demo", qos.Recipient{UserID: "u1", TenantID: "t1"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != before.ID {
		t.Fatalf("Pending after restart: got %v, want only %s", got, before.ID)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, failed.ID) || strings.HasSuffix(k, ":q:t:t1") {
			t.Fatalf("key %s of the failed Save exists", k)
		}
	}
}

// TestRedisSaveAllOrNothing makes the last write of a Save impossible (a
// foreign value where the tenant inbox belongs): Save fails and stores
// nothing at all.
func TestRedisSaveAllOrNothing(t *testing.T) {
	s := testredis.Start(t)
	c := s.Client()
	repo := newRedisRepo(t, c, "pushd")
	ctx := context.Background()
	if err := c.Set(ctx, "pushd:{demo}:q:t:t1", "not an inbox", 0).Err(); err != nil {
		t.Fatal(err)
	}
	m := userMsg("e", "u1")
	m.TenantIDs = []string{"t1"}
	if err := repo.Save(ctx, "demo", m); err == nil {
		t.Fatal("Save into a broken key space: no error")
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("half-stored message: keys %v", keys)
	}
	if st := repo.Stats(); st.Stored != 0 {
		t.Fatalf("failed Save counted as stored: %+v", st)
	}
}

// TestRedisKeysAndExpiry checks the key layout and that expired messages
// leave the inboxes and the indices, and that every key carries a TTL.
func TestRedisKeysAndExpiry(t *testing.T) {
	s := testredis.Start(t)
	c := s.Client()
	repo := newRedisRepo(t, c, "px")
	ctx := context.Background()
	short := userMsg("short", "u1")
	short.All = true
	// 3 s: the key checks below run before it expires even on a loaded
	// machine (the store takes no clock to fake).
	short.ExpiresAt = time.Now().Add(3 * time.Second)
	long := userMsg("long", "u1")
	for _, m := range []qos.Message{short, long} {
		if err := repo.Save(ctx, "demo", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.Ack(ctx, "demo", qos.Recipient{UserID: "u2"}, short.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"px:{demo}:m:" + short.ID, "px:{demo}:m:" + long.ID, "px:{demo}:a:" + short.ID,
		"px:{demo}:q:u:u1", "px:{demo}:q:all", "px:{demo}:idx", "px:{demo}:exp",
	}
	for _, k := range want {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("key %s: PTTL %v, want a TTL", k, ttl)
		}
	}
	if n, _ := c.DBSize(ctx).Result(); n != int64(len(want)) {
		keys, _ := c.Keys(ctx, "*").Result()
		t.Fatalf("keys: got %v, want %v", keys, want)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := repo.Pending(ctx, "demo", qos.Recipient{UserID: "u1"}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].ID == long.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("short message still pending after 10s: %v", got)
		}
		time.Sleep(20 * time.Millisecond) // polling for a deadline to pass
	}
	// Pending dropped the expired member from the inboxes it read.
	if n, _ := c.ZCard(ctx, "px:{demo}:q:u:u1").Result(); n != 1 {
		t.Fatalf("user inbox holds %d members, want 1", n)
	}
	if n, _ := c.Exists(ctx, "px:{demo}:q:all").Result(); n != 0 {
		t.Fatalf("the all inbox outlived its only message")
	}
	// List sweeps the indices and counts the expiry.
	if _, total, err := repo.List(ctx, "demo", qos.Filter{}, 0, 0); err != nil || total != 1 {
		t.Fatalf("List: total %d, %v; want 1", total, err)
	}
	if n, _ := c.ZCard(ctx, "px:{demo}:exp").Result(); n != 1 {
		t.Fatalf("exp index holds %d members, want 1", n)
	}
	if st := repo.Stats(); st.Expired != 1 || st.Stored != 2 {
		t.Fatalf("stats %+v, want Stored 2, Expired 1", st)
	}
}

// TestRedisAcksOfTheOldLayout: before acknowledgements were told apart by
// tenant, a user's ack was recorded as "u:{user}" whatever the tenant. Such
// records still count for the user without tenant (the key is the same);
// a user with a tenant no longer matches them and gets those messages once
// more, then acknowledges them under its own key. Nothing fails.
func TestRedisAcksOfTheOldLayout(t *testing.T) {
	s := testredis.Start(t)
	c := s.Client()
	repo := newRedisRepo(t, c, "px")
	ctx := context.Background()
	m := userMsg("all")
	m.UserIDs = nil
	m.All = true
	if err := repo.Save(ctx, "demo", m); err != nil {
		t.Fatal(err)
	}
	if err := c.SAdd(ctx, "px:{demo}:a:"+m.ID, "u:dup3").Err(); err != nil {
		t.Fatal(err)
	}
	noTenant := qos.Recipient{UserID: "dup3"}
	inA := qos.Recipient{UserID: "dup3", TenantID: "tA"}
	if got, err := repo.Pending(ctx, "demo", noTenant, "", 0); err != nil || len(got) != 0 {
		t.Fatalf("Pending dup3 over an old ack record: %v, %v; want nothing", got, err)
	}
	if got, err := repo.Pending(ctx, "demo", inA, "", 0); err != nil || len(got) != 1 {
		t.Fatalf("Pending dup3@tA over an old ack record: %v, %v; want the message once more", got, err)
	}
	if n, err := repo.Ack(ctx, "demo", inA, m.ID); err != nil || n != 1 {
		t.Fatalf("Ack dup3@tA: %d, %v; want 1", n, err)
	}
	if got, err := repo.Pending(ctx, "demo", inA, "", 0); err != nil || len(got) != 0 {
		t.Fatalf("Pending dup3@tA after its ack: %v, %v", got, err)
	}
	members, err := c.SMembers(ctx, "px:{demo}:a:"+m.ID).Result()
	if err != nil || len(members) != 2 || !slices.Contains(members, "tu:2:tA:dup3") {
		t.Fatalf("ack records %v, %v; want the old one and tu:2:tA:dup3", members, err)
	}
}

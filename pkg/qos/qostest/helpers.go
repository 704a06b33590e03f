package qostest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

const app = "app1"

// msg returns a message to users with a fresh id, expiring in an hour.
func msg(event string, users ...string) qos.Message {
	now := time.Now()
	return qos.Message{
		ID:        qos.NewID(),
		Event:     event,
		Data:      "data of " + event,
		UserIDs:   users,
		CreatedAt: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

func save(t *testing.T, r qos.Repository, app string, ms ...qos.Message) {
	t.Helper()
	for _, m := range ms {
		if err := r.Save(context.Background(), app, m); err != nil {
			t.Fatalf("Save(%s, %s): %v", app, m.ID, err)
		}
	}
}

func pending(t *testing.T, r qos.Repository, app string, rc qos.Recipient, after string, limit int) []qos.Message {
	t.Helper()
	ms, err := r.Pending(context.Background(), app, rc, after, limit)
	if err != nil {
		t.Fatalf("Pending(%s, %+v): %v", app, rc, err)
	}
	return ms
}

func ack(t *testing.T, r qos.Repository, app string, rc qos.Recipient, ids ...string) int {
	t.Helper()
	n, err := r.Ack(context.Background(), app, rc, ids...)
	if err != nil {
		t.Fatalf("Ack(%s, %+v, %v): %v", app, rc, ids, err)
	}
	return n
}

func list(t *testing.T, r qos.Repository, app string, f qos.Filter, offset, limit int) ([]qos.Message, int) {
	t.Helper()
	ms, total, err := r.List(context.Background(), app, f, offset, limit)
	if err != nil {
		t.Fatalf("List(%s, %+v, %d, %d): %v", app, f, offset, limit, err)
	}
	return ms, total
}

func ids(ms []qos.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []qos.Message, want ...string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) && (len(g) != 0 || len(want) != 0) {
		t.Fatalf("%s: got ids %v, want %v", what, g, want)
	}
}

func wantN(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %d, want %d", what, got, want)
	}
}

func user(id string) qos.Recipient { return qos.Recipient{UserID: id} }

package hubhttp

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

func newHub(t *testing.T, repo qos.Repository) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Writers: -1, Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

func TestMessagesPage(t *testing.T) {
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(t, repo)
	ctx := context.Background()
	for _, to := range []string{"u1", "u1", "u1", "u2"} {
		if _, err := h.Publish(ctx, hub.Target{UserIDs: []string{to}}, hub.Event{Name: "e", Data: "x"}, hub.WithQoS(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	f := MessagesFilter(httptest.NewRequest("GET", "/?userId=u1&listeners=e,f", nil))
	if f.UserID != "u1" || f.Event != "e" {
		t.Fatalf("filter %+v", f)
	}
	p, err := MessagesPage(ctx, h, f, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 3 || len(p.List) != 1 || p.PageNum != 2 || p.PageSize != 2 {
		t.Errorf("page 2 of 2 of u1's messages: %+v", p)
	}
	p, err = MessagesPage(ctx, h, f, 5, 2)
	if err != nil || p.List == nil || len(p.List) != 0 || p.Total != 3 {
		t.Errorf("a page past the end: %+v, %v (want an empty list, not null)", p, err)
	}
}

func TestMessagesPageWithoutQoS(t *testing.T) {
	_, err := MessagesPage(context.Background(), newHub(t, nil), qos.Filter{}, 1, 10)
	if !errors.Is(err, hub.ErrQoSDisabled) || Status(err) != 501 {
		t.Fatalf("got %v", err)
	}
}

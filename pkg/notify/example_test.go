package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/pushd/pushd/pkg/notify"
	"github.com/pushd/pushd/pkg/signature"
)

func Example() {
	const secret = "shared-with-the-backend"
	got := make(chan notify.Event, 10)
	replay := signature.NewReplayCache(0) // one for all requests: each is accepted once
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := notify.Verify(r, secret, signature.Options{Replay: replay})
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got <- ev
	}))
	defer backend.Close()

	n, err := notify.New(notify.Config{URL: backend.URL + "/presence", Secret: secret, Grace: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)

	// What the hub's hooks report: two tabs open, both close.
	n.Connected(notify.Presence{App: "demo", UserID: "u1", ConnectionID: "c1", Connections: 1})
	n.Connected(notify.Presence{App: "demo", UserID: "u1", ConnectionID: "c2", Connections: 2})
	n.Disconnected(notify.Presence{App: "demo", UserID: "u1", ConnectionID: "c1", Connections: 1})
	n.Disconnected(notify.Presence{App: "demo", UserID: "u1", ConnectionID: "c2", Connections: 0, SessionDuration: 42 * time.Second})

	for range 2 {
		ev := <-got
		fmt.Println(ev.Type, ev.UserID, ev.ConnectionID, ev.Connections, ev.SessionDuration)
	}
	// Output:
	// online u1 c1 1 0
	// offline u1 c2 0 42
}

package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Regression tests of bugs found in the hub.

// IsOnline("") falls through to Connections(ConnectionQuery{UserID: ""}),
// whose empty UserID matches every connection, so any anonymous or other
// connection makes the empty user "online".
func TestBugIsOnlineEmptyUser(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	mustConnect(t, h, ConnectRequest{User: User{AccessToken: "k"}})
	if on, err := h.IsOnline(context.Background(), ""); on || err != nil {
		t.Errorf(`IsOnline("") = %v %v, want false`, on, err)
	}
}

// Drain sets h.closing, and Publish refuses every send once closing is set
// (send.go, Publish: "if h.closing.Load() { return Result{}, ErrClosed }"),
// so for the whole drain window the connections that are still open get
// nothing and the API answers 503, although Drain's contract is to keep
// them until their turn.
func TestBugSendDuringDrain(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	a := mustConnect(t, h, connectReq("a"))
	b := mustConnect(t, h, connectReq("b"))
	drainQueue(a)
	drainQueue(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Drain(ctx, time.Hour) }() // closes one now, the other in 30 min
	checkFor(t, waitTimeout, func() error {
		if !a.Closed() && !b.Closed() {
			return errors.New("drain has not started")
		}
		return nil
	})
	n, err := h.SendAll(context.Background(), "e", "still here")
	if err != nil || n != 1 {
		t.Errorf("SendAll during drain: %d %v, want the open connection reached", n, err)
	}
	cancel()
	<-done
}

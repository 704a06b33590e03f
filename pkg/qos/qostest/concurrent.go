package qostest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pushd/pushd/pkg/qos"
)

func testConcurrent(t *testing.T, r qos.Repository) {
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			rc := qos.Recipient{UserID: fmt.Sprint("user", w), TenantID: "t1"}
			for i := range perWorker {
				m := msg(fmt.Sprint("e", i), rc.UserID)
				if i%4 == 0 {
					m.UserIDs = nil
					m.TenantIDs = []string{"t1"} // also seen by the others
				}
				if err := r.Save(ctx, app, m); err != nil {
					errs <- err
					return
				}
				// Drain everything this user has (bounded inbox: keep up).
				got, err := r.Pending(ctx, app, rc, "", 0)
				if err != nil {
					errs <- err
					return
				}
				if _, err := r.Ack(ctx, app, rc, ids(got)...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		rc := qos.Recipient{UserID: fmt.Sprint("user", w), TenantID: "t1"}
		got := pending(t, r, app, rc, "", 0)
		if _, err := r.Ack(context.Background(), app, rc, ids(got)...); err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "pending after draining "+rc.UserID, pending(t, r, app, rc, "", 0))
	}
}

func testConcurrentAckOnce(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	m.Channels = []string{"c1"}
	save(t, r, app, m)
	rc := qos.Recipient{UserID: "u1", Channels: []string{"c1"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.Ack(context.Background(), app, rc, m.ID)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	wantN(t, "acks counted over 8 concurrent Acks", total, 1)
}

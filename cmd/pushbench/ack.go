package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// acker acknowledges QoS messages in batches per connection.
type acker struct {
	b        *bench
	stop     <-chan struct{}
	in       chan ackItem
	http     *http.Client
	queued   atomic.Int64 // ids handed to add
	acked    atomic.Int64 // ids the server accepted
	failures atomic.Int64 // ids in failed or abandoned posts
}

// settled reports whether every queued id was posted.
func (a *acker) settled() bool {
	return a.acked.Load()+a.failures.Load() >= a.queued.Load()
}

type ackItem struct {
	c  *client
	id string
}

func (a *acker) add(c *client, id string) {
	a.queued.Add(1)
	select {
	case a.in <- ackItem{c, id}:
	case <-a.stop:
	}
}

// run batches acks until ctx ends, posting each connection's batch every
// AckInterval with a few workers.
func (a *acker) run(ctx context.Context) {
	pending := map[*client][]string{}
	tick := time.NewTicker(a.b.cfg.AckInterval)
	defer tick.Stop()
	type job struct {
		c   *client
		ids []string
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				a.post(ctx, j.c, j.ids)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-a.in:
			pending[it.c] = append(pending[it.c], it.id)
		case <-tick.C:
			for c, ids := range pending {
				select {
				case jobs <- job{c, ids}:
				case <-ctx.Done():
					return
				}
				delete(pending, c)
			}
		}
	}
}

func (a *acker) fail(n int, what string) {
	a.failures.Add(int64(n))
	a.b.noteConnError(what)
}

func (a *acker) post(ctx context.Context, c *client, ids []string) {
	body, _ := json.Marshal(map[string]any{"connectionId": c.id, "ids": ids})
	// The demo authentication reads the identity from the query, as sse.js
	// sends its query option with every call.
	q := url.Values{"userId": {c.user}, "tenantId": {c.tenant}}
	u := a.b.cfg.Nodes[c.node] + a.b.cfg.Base + "/connect/ack.do?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		a.fail(len(ids), "ack: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			a.fail(len(ids), "ack: "+shortErr(err))
		}
		return
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.fail(len(ids), fmt.Sprintf("ack: status %d: %s", resp.StatusCode, strings.TrimSpace(string(answer))))
		return
	}
	a.acked.Add(int64(len(ids)))
}

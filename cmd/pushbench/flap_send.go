package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// publish runs Publishers goroutines per stream kind for Duration; each
// owns the streams whose index it is modulo Publishers and sends to them
// in turn, one send at a time, at its share of the kind's rate. A
// stream's sequence number advances only when a send was answered 200,
// so that each stream's numbers have no holes.
func (r *flapRun) publish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start := time.Now()
	pad := strings.Repeat("x", r.cfg.Payload)
	var wg sync.WaitGroup
	kinds := []struct {
		rate float64
		sent []atomic.Int64
		key  func(j int) (string, sendTarget)
	}{
		{r.cfg.Flap.ChannelRate, r.chanSent, func(j int) (string, sendTarget) {
			ch := r.channelName(j)
			return "c:" + ch, sendTarget{Channels: []string{ch}}
		}},
		{r.cfg.Flap.UserRate, r.userSent, func(j int) (string, sendTarget) {
			u := "u" + strconv.Itoa(j)
			return "u:" + u, sendTarget{UserIDs: []string{u}}
		}},
	}
	for _, kind := range kinds {
		p := min(r.cfg.Publishers, len(kind.sent))
		for g := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var own []int
				for j := g; j < len(kind.sent); j += p {
					own = append(own, j)
				}
				every := time.Duration(float64(time.Second) * float64(p) / kind.rate)
				for n := 0; ; n++ {
					if d := time.Until(start.Add(time.Duration(n) * every)); d > 0 {
						sleepCtx(ctx, d)
					}
					if ctx.Err() != nil {
						return
					}
					j := own[n%len(own)]
					key, to := kind.key(j)
					seq := kind.sent[j].Load()
					req := sendRequest{To: to, Event: r.cfg.Event,
						Data: formatPayload(r.runID, 1, seq, time.Now().UnixNano(), key, []byte(pad))}
					if err := r.send(ctx, req); err != nil {
						if ctx.Err() == nil {
							r.sendErr.Add(1)
							r.note("send: " + err.Error())
						}
						continue
					}
					kind.sent[j].Add(1)
				}
			}()
		}
	}
	wg.Wait()
}

// send posts one message through a random node's API. The send is not
// bound to ctx's end, so that a send the server took is also counted.
func (r *flapRun) send(ctx context.Context, body sendRequest) error {
	_, err := postSend(context.WithoutCancel(ctx), r.http, r.cfg, r.nodes[rand.N(len(r.nodes))], body, 1<<16)
	return err
}

// closeAll ends every connection and waits (bounded) for the
// subscribers' goroutines. It may be called twice.
func (r *flapRun) closeAll() {
	if r.closing.Swap(true) {
		return
	}
	close(r.closed)
	for _, s := range r.subs {
		s.mu.Lock()
		if s.nc != nil {
			_ = s.nc.Close()
		}
		s.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

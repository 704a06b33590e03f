//go:build !linux

package delayproxy

import (
	"context"
	"time"
)

// clock waits on a Go timer where there is no timerfd (its wake-ups are
// up to a millisecond late).
type clock struct {
	ctx context.Context
}

func newClock(ctx context.Context) (*clock, error) { return &clock{ctx: ctx}, nil }

// wait returns after d, or with ctx's error once it ends.
func (c *clock) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

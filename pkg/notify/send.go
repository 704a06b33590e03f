package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/pushd/pushd/pkg/signature"
)

// Run sends queued events, one at a time, until ctx ends; then it returns
// nil. A second concurrent Run returns ErrRunning.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.running.Store(false)
	for {
		ev, ok := n.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-n.wake:
				continue
			}
		}
		if n.coveredElsewhere(ctx, ev) {
			n.covered.Add(1)
			continue
		}
		n.deliver(ctx, ev)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// coveredElsewhere reports whether another node speaks for the user in
// this online or offline event: for online, one holds a connection of the
// user that opened earlier (at the same millisecond, the smaller node id
// wins); for offline, one still holds a connection. When the cluster cannot
// tell, this node speaks.
func (n *Notifier) coveredElsewhere(ctx context.Context, ev Event) bool {
	if n.cfg.Cluster == nil || ev.Type != TypeOnline && ev.Type != TypeOffline {
		return false
	}
	ask, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	others, err := n.cfg.Cluster.OtherConnections(ask, ev.UserID)
	cancel()
	for _, o := range others {
		opened := o.Opened.UnixMilli()
		if ev.Type == TypeOffline || opened < ev.Timestamp || opened == ev.Timestamp && o.Node < n.cfg.NodeID {
			n.log.Debug().Str("event", ev.Type).Str("user", ev.UserID).Str("node", o.Node).
				Msg("presence covered by another node")
			return true
		}
	}
	if err != nil && ctx.Err() == nil {
		n.log.Warn().Err(err).Str("event", ev.Type).Str("user", ev.UserID).
			Msg("cluster presence unknown, notifying as this node")
	}
	return false
}

// deliver tries one event up to MaxAttempts times.
func (n *Notifier) deliver(ctx context.Context, ev Event) {
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen with these field types
		n.failed.Add(1)
		return
	}
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, ev.Type, body)
		if err == nil {
			n.sent.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.cfg.MaxAttempts {
			n.failed.Add(1)
			n.log.Warn().Err(err).Str("event", ev.Type).Str("id", ev.ID).Str("app", ev.App).
				Str("user", ev.UserID).Int("attempts", attempt).Msg("notification given up")
			return
		}
		n.log.Debug().Err(err).Str("event", ev.Type).Int("attempt", attempt).Msg("notification failed, retrying")
		t := time.NewTimer(n.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		n.retries.Add(1)
	}
}

// backoff is the wait after the attempt-th failure: Backoff·2^(attempt-1),
// capped at MaxBackoff, minus a random part of up to half.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(mrand.Int64N(half + 1))
	}
	return d
}

// post makes one attempt. retry tells whether a failure may be retried.
func (n *Notifier) post(ctx context.Context, typ string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, typ)
	sum := signature.BodySHA256(body)
	if n.cfg.Secret == "" {
		req.Header.Set(signature.HeaderTimestamp, signature.Timestamp(time.Now()))
		req.Header.Set(signature.HeaderContentSHA256, sum)
	} else if err := signature.SignRequest(req, n.cfg.Secret, sum, time.Now(), typ); err != nil {
		return false, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return false, nil
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return true, fmt.Errorf("notify: backend answered %d", s)
	default:
		return false, fmt.Errorf("notify: backend answered %d", s)
	}
}

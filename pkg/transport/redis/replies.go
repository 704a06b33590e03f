package redis

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// replier publishes the replies of served requests from one goroutine.
// Binary replies to one sender that are ready together go out as one
// message (while a flush is in flight the next batch collects), so a busy
// sender costs Redis one reply PUBLISH per batch rather than per request;
// a reply to a JSON request goes out alone, as JSON.
type replier struct {
	t       *Transport
	mu      sync.Mutex
	pending map[string]*replyBatch // by reply channel
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// replyBatch is what waits for one reply channel.
type replyBatch struct {
	binary   []byte   // a binary batch; nil when none
	legacy   [][]byte // JSON replies, one message each
	deadline time.Time
}

// startReplier starts the goroutine that publishes replies until stopped.
func (t *Transport) startReplier() *replier {
	r := &replier{
		t:       t,
		pending: make(map[string]*replyBatch),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.run()
	return r
}

// add queues rep for channel. The sender waits until deadline; a batch
// still unsent then is dropped.
func (r *replier) add(channel string, rep *replyEnvelope, legacy bool, deadline time.Time) {
	var js []byte
	if legacy {
		var err error
		if js, err = json.Marshal(rep); err != nil {
			r.t.log.Error().Err(err).Msg("encode reply")
			return
		}
	}
	r.mu.Lock()
	b := r.pending[channel]
	if b == nil {
		b = &replyBatch{}
		r.pending[channel] = b
	}
	if legacy {
		b.legacy = append(b.legacy, js)
	} else {
		if b.binary == nil {
			b.binary = startReplies(make([]byte, 0, 256), r.t.cfg.NodeID)
		}
		b.binary = appendReply(b.binary, rep)
	}
	b.deadline = maxTime(b.deadline, deadline)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run flushes whenever replies are pending, and once more when stopped.
func (r *replier) run() {
	defer close(r.done)
	for {
		select {
		case <-r.wake:
			r.flush()
		case <-r.stop:
			r.flush()
			return
		}
	}
}

// flush publishes everything pending: one PUBLISH for a single message,
// otherwise one pipeline.
func (r *replier) flush() {
	r.mu.Lock()
	pending := r.pending
	if len(pending) == 0 {
		r.mu.Unlock()
		return
	}
	r.pending = make(map[string]*replyBatch, len(pending))
	r.mu.Unlock()

	type message struct {
		channel string
		payload []byte
	}
	var msgs []message
	now := time.Now()
	deadline := now
	for ch, b := range pending {
		if !b.deadline.After(now) {
			continue // the sender stopped waiting
		}
		deadline = maxTime(deadline, b.deadline)
		if b.binary != nil {
			msgs = append(msgs, message{ch, b.binary})
		}
		for _, js := range b.legacy {
			msgs = append(msgs, message{ch, js})
		}
	}
	if len(msgs) == 0 {
		return
	}
	// The replies go out even when Run is stopping: the senders counted
	// this node and would otherwise wait until their deadline.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var err error
	if len(msgs) == 1 {
		err = r.t.publishOn(ctx, r.t.client, msgs[0].channel, msgs[0].payload).Err()
	} else {
		_, err = r.t.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range msgs {
				r.t.publishOn(ctx, p, m.channel, m.payload)
			}
			return nil
		})
	}
	if err != nil {
		r.t.log.Warn().Err(err).Int("messages", len(msgs)).Msg("publish replies")
	}
}

// close publishes what is pending and stops the goroutine. Call it after
// the last add.
func (r *replier) close() {
	close(r.stop)
	<-r.done
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

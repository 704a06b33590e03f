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
// a reply to a JSON request goes out alone, as JSON. It publishes on a
// connection of its own (ownConn), and reuses its batches' memory.
type replier struct {
	t       *Transport
	mu      sync.Mutex
	pending map[string]*replyBatch // by reply channel
	free    []*replyBatch          // sent batches, for reuse
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	// Used by the replier's goroutine only.
	conn    ownConn
	sending map[string]*replyBatch
	msgs    []replyMessage
}

// replyBatch is what waits for one reply channel.
type replyBatch struct {
	binary   []byte   // a binary batch; empty when none
	legacy   [][]byte // JSON replies, one message each
	deadline time.Time
}

// replyMessage is one PUBLISH of a flush.
type replyMessage struct {
	channel string
	payload []byte
}

// startReplier starts the goroutine that publishes replies until stopped.
func (t *Transport) startReplier() *replier {
	r := &replier{
		t:       t,
		pending: make(map[string]*replyBatch),
		sending: make(map[string]*replyBatch),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		conn:    ownConn{client: t.client},
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
		if n := len(r.free); n > 0 {
			b, r.free = r.free[n-1], r.free[:n-1]
		} else {
			b = &replyBatch{binary: make([]byte, 0, 256)}
		}
		r.pending[channel] = b
	}
	if legacy {
		b.legacy = append(b.legacy, js)
	} else {
		if len(b.binary) == 0 {
			b.binary = startReplies(b.binary, r.t.cfg.NodeID)
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
	defer r.conn.close()
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
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return
	}
	pending := r.pending
	r.pending, r.sending = r.sending, pending
	r.mu.Unlock()

	msgs := r.msgs[:0]
	now := time.Now()
	for ch, b := range pending {
		if !b.deadline.After(now) {
			continue // the sender stopped waiting
		}
		if len(b.binary) > 0 {
			msgs = append(msgs, replyMessage{ch, b.binary})
		}
		for _, js := range b.legacy {
			msgs = append(msgs, replyMessage{ch, js})
		}
	}
	// The replies go out even when Run is stopping: the senders counted
	// this node and would otherwise wait until their deadline. go-redis
	// bounds the command with the client's timeouts.
	err := r.publish(msgs, now)
	if r.conn.done(err) {
		// The connection held since an earlier flush was gone (Redis
		// restarted, say): once more on a new one, as go-redis retries
		// a command on a pooled connection.
		err = r.publish(msgs, now)
		r.conn.done(err)
	}
	if err != nil {
		r.t.log.Warn().Err(err).Int("messages", len(msgs)).Msg("publish replies")
	}
	clear(msgs)
	r.msgs = msgs[:0]

	// The batches go back for reuse: go-redis wrote their bytes out.
	r.mu.Lock()
	for ch, b := range pending {
		b.binary = b.binary[:0]
		clear(b.legacy)
		b.legacy = b.legacy[:0]
		b.deadline = time.Time{}
		if cap(b.binary) <= 64<<10 {
			r.free = append(r.free, b)
		}
		delete(pending, ch)
	}
	r.mu.Unlock()
}

// publish sends msgs with one PUBLISH, or one pipeline of them.
func (r *replier) publish(msgs []replyMessage, now time.Time) error {
	// The replies go out even when Run is stopping: the senders counted
	// this node and would otherwise wait until their deadline. go-redis
	// bounds the command with the client's timeouts.
	ctx := context.Background()
	p := r.conn.publisher(now)
	switch {
	case len(msgs) == 1:
		return r.t.publishOn(ctx, p, msgs[0].channel, msgs[0].payload).Err()
	case len(msgs) > 1:
		var pl goredis.Pipeliner
		if c, ok := p.(*goredis.Conn); ok {
			pl = c.Pipeline()
		} else {
			pl = r.t.client.Pipeline()
		}
		for _, m := range msgs {
			r.t.publishOn(ctx, pl, m.channel, m.payload)
		}
		_, err := pl.Exec(ctx)
		return err
	}
	return nil
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

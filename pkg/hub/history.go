package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pushd/pushd/pkg/history"
)

// HistoryStore keeps the recent events of resumable streams:
// history.Store, whose documentation says what each call does.
type HistoryStore interface {
	Append(ctx context.Context, app, stream string, e history.Entry, o history.Options) (history.Position, error)
	Since(ctx context.Context, app, stream string, p history.Position, limit int, o history.Options) (history.Result, error)
	Top(ctx context.Context, app, stream string, o history.Options) (history.Position, error)
}

// Stream name prefixes: a channel's stream and a user's.
const (
	StreamChannelPrefix = "c:"
	StreamUserPrefix    = "u:"
)

// Gap reasons of sse-gap besides the store's (history.Trimmed, Expired,
// EpochChanged).
const (
	// GapUnknown: the Last-Event-ID holds no position for the stream (the
	// connection was not in it, or the id is not pushd's).
	GapUnknown = "unknown"
	// GapUnavailable: the history store could not be read.
	GapUnavailable = "unavailable"
)

// maxReplay bounds the entries one stream replays on a reconnect.
const maxReplay = 10_000

// streamOptions returns the history options of stream, if it keeps any.
func (h *Hub) streamOptions(stream string) (history.Options, bool) {
	if h.cfg.History == nil {
		return history.Options{}, false
	}
	return h.cfg.StreamHistory(stream)
}

// targetStreams lists the resumable streams a send to t goes to, its
// channels' and users' that keep history, sorted, each once: positions
// to fill in.
func (h *Hub) targetStreams(t Target) []StreamPos {
	if h.cfg.History == nil {
		return nil
	}
	var out []StreamPos
	for _, prefixed := range [...]struct {
		prefix string
		keys   []string
	}{{StreamChannelPrefix, t.Channels}, {StreamUserPrefix, t.UserIDs}} {
		for _, k := range prefixed.keys {
			if k == "" {
				continue
			}
			s := prefixed.prefix + k
			if _, ok := h.cfg.StreamHistory(s); ok {
				if out == nil {
					out = make([]StreamPos, 0, len(t.Channels)+len(t.UserIDs))
				}
				out = append(out, StreamPos{Stream: s})
			}
		}
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b StreamPos) int { return strings.Compare(a.Stream, b.Stream) })
		out = slices.CompactFunc(out, func(a, b StreamPos) bool { return a.Stream == b.Stream })
	}
	return out
}

// connStreams lists the resumable streams of c: its user's and its
// channels' that keep history.
func (h *Hub) connStreams(c *Conn) []string {
	var out []string
	if c.user.ID != "" {
		if _, ok := h.streamOptions(StreamUserPrefix + c.user.ID); ok {
			out = append(out, StreamUserPrefix+c.user.ID)
		}
	}
	for _, ch := range c.Channels() {
		if _, ok := h.streamOptions(StreamChannelPrefix + ch); ok {
			out = append(out, StreamChannelPrefix+ch)
		}
	}
	return out
}

// appendHistory stores ev in every resumable stream of t and records the
// positions assigned in ev.Streams. The entries of a send to several
// streams share an id, so a reconnect that replays several of them shows
// it once; a send to one stream needs none. The appends are bounded by
// Config.StoreTimeout, unless the store is history.Immediate.
func (h *Hub) appendHistory(ctx context.Context, t Target, ev *Event) error {
	streams := h.targetStreams(t)
	if len(streams) == 0 {
		return nil
	}
	if !h.historyImmediate {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.StoreTimeout)
		defer cancel()
	}
	entry := history.Entry{Event: ev.Name, Data: ev.Data}
	if len(streams) > 1 {
		entry.ID = newSendID()
	}
	for i := range streams {
		opts, _ := h.cfg.StreamHistory(streams[i].Stream)
		p, err := h.cfg.History.Append(ctx, h.cfg.App, streams[i].Stream, entry, opts)
		if err != nil {
			return errStore("history append", err)
		}
		streams[i].Offset, streams[i].Epoch = p.Offset, p.Epoch
	}
	ev.Streams = streams
	return nil
}

// isImmediate reports whether s says its calls never wait on I/O
// (history.Immediate).
func isImmediate(s HistoryStore) bool {
	im, ok := s.(history.Immediate)
	return ok && im.Immediate()
}

// newSendID returns 72 random bits, URL-safe.
func newSendID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// streamGap is one stream of an sse-gap event.
type streamGap struct {
	Channel string `json:"channel,omitempty"`
	User    string `json:"user,omitempty"`
	Reason  string `json:"reason"`
}

func gapOf(stream, reason string) streamGap {
	if ch, ok := strings.CutPrefix(stream, StreamChannelPrefix); ok {
		return streamGap{Channel: ch, Reason: reason}
	}
	return streamGap{User: strings.TrimPrefix(stream, StreamUserPrefix), Reason: reason}
}

// resumePlan is what a connect with resumable streams queues after its
// connect-finish.
type resumePlan struct {
	resumed *bool             // set when the connect named positions: whether all were served
	gaps    []streamGap       // streams that could not be resumed exactly
	replay  []*frame          // the missed events, in order
	seen    map[string]uint64 // per stream, the offset up to which the client has everything (live frames up to it are dropped)
	epochs  map[string]string
}

// planResume reads c's streams' positions and, when lastEventID holds
// positions, the events after them. It runs after c is registered, so a
// live event is either among the replayed ones or queued behind them.
func (h *Hub) planResume(ctx context.Context, c *Conn, lastEventID string) resumePlan {
	plan := resumePlan{seen: map[string]uint64{}, epochs: map[string]string{}}
	streams := h.connStreams(c)
	given, named := decodePositionsID(lastEventID)
	if named {
		resumed := true
		plan.resumed = &resumed
	}
	type replayed struct {
		entry   history.Entry
		streams []StreamPos
		had     bool // the client has it already (an offset ahead of its position)
	}
	byID := map[string]*replayed{}
	var order []*replayed
	pos := make([]StreamPos, 0, len(streams))
	for _, s := range streams {
		opts, _ := h.cfg.StreamHistory(s)
		top, err := h.cfg.History.Top(ctx, h.cfg.App, s, opts)
		if err != nil {
			h.log.Warn().Err(err).Str("stream", s).Msg("history unavailable at connect")
			plan.gaps = append(plan.gaps, gapOf(s, GapUnavailable))
			continue
		}
		sp := StreamPos{Stream: s, Offset: top.Offset, Epoch: top.Epoch}
		plan.epochs[s] = top.Epoch
		if named {
			g, ok := given[hash32(s)]
			if !ok {
				plan.gaps = append(plan.gaps, gapOf(s, GapUnknown))
			} else {
				from := history.Position{Offset: g.offset, Epoch: top.Epoch}
				if g.epoch != hash32(top.Epoch) {
					from = history.Position{Epoch: "~" + top.Epoch} // another epoch: from the oldest kept
				} else {
					plan.seen[s] = g.offset
					sp.Offset = g.offset
				}
				var entries []history.Entry
				gap := history.NoGap
				if from.Epoch != top.Epoch || g.offset != top.Offset { // else nothing was missed: no read
					entries, gap, err = h.readSince(ctx, s, from, opts)
				}
				switch {
				case err != nil:
					h.log.Warn().Err(err).Str("stream", s).Msg("history unreadable at connect")
					plan.gaps = append(plan.gaps, gapOf(s, GapUnavailable))
				case gap != history.NoGap:
					plan.gaps = append(plan.gaps, gapOf(s, string(gap)))
					sp.Offset = 0
				}
				for _, e := range entries {
					r := byID[e.ID]
					if r == nil || e.ID == "" {
						r = &replayed{entry: e}
						if e.ID != "" {
							byID[e.ID] = r
						}
						order = append(order, r)
					}
					r.streams = append(r.streams, StreamPos{Stream: s, Offset: e.Offset, Epoch: top.Epoch})
					r.had = r.had || from.Epoch == top.Epoch && slices.Contains(g.ahead, e.Offset)
					plan.seen[s] = max(plan.seen[s], e.Offset)
				}
			}
		}
		pos = append(pos, sp)
	}
	if plan.resumed != nil && len(plan.gaps) > 0 {
		*plan.resumed = false
	}
	// Each stream's entries are in order; across streams, by the time
	// they were stored.
	sort.SliceStable(order, func(i, j int) bool { return order[i].entry.Time.Before(order[j].entry.Time) })
	for _, r := range order {
		if r.had { // only its positions: the client has the event
			plan.replay = append(plan.replay, &frame{head: positionsFrame.head, tail: positionsFrame.tail, counted: true, streams: r.streams})
			continue
		}
		plan.replay = append(plan.replay, encodeEvent(Event{Name: r.entry.Event, Data: r.entry.Data, Streams: r.streams}))
	}
	c.resume.set(pos)
	return plan
}

// readSince reads a stream's entries after from, page by page, up to
// maxReplay.
func (h *Hub) readSince(ctx context.Context, stream string, from history.Position, opts history.Options) ([]history.Entry, history.Gap, error) {
	var out []history.Entry
	gap := history.NoGap
	for len(out) < maxReplay {
		res, err := h.cfg.History.Since(ctx, h.cfg.App, stream, from, min(1000, maxReplay-len(out)), opts)
		if err != nil {
			return out, gap, err
		}
		if gap == history.NoGap {
			gap = res.Gap
		}
		out = append(out, res.Entries...)
		if !res.More || len(res.Entries) == 0 {
			break
		}
		last := res.Entries[len(res.Entries)-1]
		from = history.Position{Offset: last.Offset, Epoch: res.Top.Epoch}
	}
	return out, gap, nil
}

// applyResume lays out c's queue: connect-finish (saying whether the
// resume was complete), sse-gap when streams could not be resumed, a bare
// id that hands the client its positions, the missed events, then the
// live events that came meanwhile, without those already replayed or
// seen. The writer is not attached yet, so the queue is c's own.
func (h *Hub) applyResume(c *Conn, plan resumePlan) {
	var position string
	if pos := c.resume.positions(); len(pos) > 0 {
		position = string(appendPositionsID(nil, pos))
	}
	head := []*frame{encodeConnectFinishResumed(c, h, plan.resumed, position)}
	if len(plan.gaps) > 0 {
		data, _ := json.Marshal(struct {
			Streams []streamGap `json:"streams"`
		}{plan.gaps})
		head = append(head, encodeEvent(Event{Name: "sse-gap", Data: string(data)}))
	}
	head = append(head, positionsFrame)
	head = append(head, plan.replay...)
	floor := plan.floor()
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.queue[1:] // after the connect-finish Connect queued
	queue := append(head, live[:0:0]...)
	for _, f := range live {
		if !coveredBy(floor, f) {
			queue = append(queue, f)
		}
	}
	c.queue = queue
	if len(plan.seen) > 0 {
		// A live event the replay holds may still be on its way from
		// the node that stored it (stored, then published): offer drops
		// it when it comes.
		c.replayed = &floor
	}
}

// floor is, per stream of the connection, the offset up to which the
// client has everything or gets it in the replay, sorted by stream; the
// epoch is empty for a stream of which it has nothing.
func (p resumePlan) floor() []StreamPos {
	out := make([]StreamPos, 0, len(p.epochs))
	for s, epoch := range p.epochs {
		seen, ok := p.seen[s]
		if !ok {
			epoch = ""
		}
		out = append(out, StreamPos{Stream: s, Offset: seen, Epoch: epoch})
	}
	slices.SortFunc(out, func(a, b StreamPos) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// coveredBy reports whether f is in a stream of floor and every position
// of f in floor's streams is at or below floor's, in the same epoch: the
// client has f or gets it in the replay.
func coveredBy(floor []StreamPos, f *frame) bool {
	tracked := false
	for _, sp := range f.streams {
		i, ok := slices.BinarySearchFunc(floor, sp.Stream, func(a StreamPos, name string) int { return strings.Compare(a.Stream, name) })
		if !ok {
			continue // not one of the connection's streams
		}
		tracked = true
		if fl := floor[i]; fl.Epoch == "" || fl.Epoch != sp.Epoch || sp.Offset > fl.Offset {
			return false
		}
	}
	return tracked
}

// positionsFrame is a bare "id:" frame: it sets the browser's last event
// id to the connection's positions without dispatching an event.
var positionsFrame = &frame{head: []byte("id:"), tail: []byte("\n\n"), counted: true}

// ErrNoHistory is returned by StreamHistory for a stream that keeps no
// history.
var ErrNoHistory = errors.New("hub: the stream keeps no history")

// ReadHistory reads one page of a resumable stream ("c:" + channel or
// "u:" + user id): at most limit entries after p (p.Offset 0 with the
// current epoch, or an empty epoch: from the oldest kept).
func (h *Hub) ReadHistory(ctx context.Context, stream string, p history.Position, limit int) (history.Result, error) {
	opts, ok := h.streamOptions(stream)
	if !ok {
		return history.Result{}, fmt.Errorf("%w: %s", ErrNoHistory, stream)
	}
	if p.Epoch == "" {
		top, err := h.cfg.History.Top(ctx, h.cfg.App, stream, opts)
		if err != nil {
			return history.Result{}, errStore("history top", err)
		}
		p.Epoch = top.Epoch
	}
	res, err := h.cfg.History.Since(ctx, h.cfg.App, stream, p, limit, opts)
	if err != nil {
		return history.Result{}, errStore("history read", err)
	}
	return res, nil
}

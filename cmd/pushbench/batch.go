package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// batchAnswer is one item of a batch send's answer: a send's result or,
// for a refused or failed item, its error and status.
type batchAnswer struct {
	Delivered int    `json:"delivered"`
	Stored    bool   `json:"stored"`
	ID        string `json:"id"`
	Error     string `json:"error"`
	Status    int    `json:"status"`
}

// publishBatches is one publisher of a phase with Batch > 1: it claims
// Batch consecutive messages at a time (in user mode, Batch different
// users when Users ≥ Batch) and posts them as one batch send, a JSON
// array, until the phase's messages are sent, Duration has passed or ctx
// ends. rate still counts messages, not calls.
func (b *bench) publishBatches(ctx context.Context, ph *phase, e expectations, start time.Time, pad []byte, messages int, rate float64) {
	size := int64(b.cfg.Batch)
	for ctx.Err() == nil {
		first := ph.nextSeq.Add(size) - size
		n := size
		if messages > 0 {
			if first >= int64(messages) {
				return
			}
			n = min(n, int64(messages)-first)
		}
		if !b.awaitTurn(ctx, start, first, rate) {
			return
		}
		if !b.publishBatch(ctx, ph, e, first, int(n), pad) {
			return
		}
	}
}

// publishBatch sends messages first … first+n-1 in one batch call and
// records each item's answer as publishOne records a single send's. It
// returns false when the phase's message table is full.
func (b *bench) publishBatch(ctx context.Context, ph *phase, e expectations, first int64, n int, pad []byte) bool {
	items := make([]sendRequest, 0, n)
	states := make([]*msgState, 0, n)
	full := false
	for seq := first; seq < first+int64(n); seq++ {
		m := ph.slot(seq)
		if m == nil {
			full = true
			break
		}
		items = append(items, b.prepare(ph, e, seq, m, pad))
		states = append(states, m)
	}
	if len(items) == 0 {
		return !full
	}
	node := b.cfg.Nodes[b.apiNodes[int(first%int64(len(b.apiNodes)))]]
	t0 := time.Now()
	answers, err := b.sendBatch(ctx, node, items)
	ph.apiCall.Record(time.Since(t0))
	if err == nil && len(answers) != len(items) {
		err = fmt.Errorf("batch: %d answers to %d sends", len(answers), len(items))
	}
	if err != nil {
		ph.sendErr.Add(int64(len(items)))
		ph.noteError(err.Error())
		return !full
	}
	for i, a := range answers {
		if a.Error != "" || (a.Status != 0 && a.Status != 200) {
			ph.sendErr.Add(1)
			ph.noteError(fmt.Sprintf("batch item: status %d: %s", a.Status, a.Error))
			continue
		}
		ph.sent.Add(1)
		states[i].apiDelivered.Store(int32(a.Delivered))
	}
	return !full
}

// sendBatch posts items as one batch send and returns its answers.
func (b *bench) sendBatch(ctx context.Context, node string, items []sendRequest) ([]batchAnswer, error) {
	data, err := postSend(ctx, b.http, b.cfg, node, items, 1<<24)
	if err != nil {
		return nil, fmt.Errorf("batch send: %w", err)
	}
	var answers []batchAnswer
	if err := json.Unmarshal(data, &answers); err != nil {
		return nil, fmt.Errorf("batch send: answer of %d bytes: %w", len(data), err)
	}
	return answers, nil
}

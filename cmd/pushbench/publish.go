package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sendRequest is the body of POST /api/v1/apps/{app}/send.
type sendRequest struct {
	To    sendTarget `json:"to"`
	Event string     `json:"event"`
	Data  string     `json:"data"`
	QoS   bool       `json:"qos,omitempty"`
	TTL   string     `json:"ttl,omitempty"`
}

type sendTarget struct {
	All       bool     `json:"all,omitempty"`
	UserIDs   []string `json:"userIds,omitempty"`
	TenantIDs []string `json:"tenantIds,omitempty"`
	Channels  []string `json:"channels,omitempty"`
}

type sendResponse struct {
	Delivered int    `json:"delivered"`
	Stored    bool   `json:"stored"`
	ID        string `json:"id"`
}

// expectations counts the connected connections per routing key at the start
// of a phase.
type expectations struct {
	all      int
	byUser   map[string]int
	byTenant map[string]int
	// byChannel counts the connections per channel.
	byChannel map[string]int
}

func (b *bench) expectations() expectations {
	e := expectations{byUser: map[string]int{}, byTenant: map[string]int{}, byChannel: map[string]int{}}
	for _, c := range b.clients {
		if c.state.Load() != stateConnected {
			continue
		}
		e.all++
		e.byUser[c.user]++
		e.byTenant[c.tenant]++
		for _, ch := range c.channels {
			e.byChannel[ch]++
		}
	}
	return e
}

// target returns the routing key, API target and expected recipients of
// message seq in mode.
func (b *bench) target(mode string, seq int64, e expectations) (string, sendTarget, int) {
	if isChannelMode(mode) {
		ch := b.cfg.channelPrefixOf(mode) + strconv.FormatInt(seq%int64(b.cfg.Channels), 10)
		return "c:" + ch, sendTarget{Channels: []string{ch}}, e.byChannel[ch]
	}
	switch mode {
	case modeUser:
		u := "u" + strconv.FormatInt(seq%int64(b.cfg.Users), 10)
		return "u:" + u, sendTarget{UserIDs: []string{u}}, e.byUser[u]
	case modeTenant:
		t := "t" + strconv.FormatInt(seq%int64(b.cfg.Tenants), 10)
		return "t:" + t, sendTarget{TenantIDs: []string{t}}, e.byTenant[t]
	default:
		return "*", sendTarget{All: true}, e.all
	}
}

// publish runs the phase's publishers until Messages are sent, Duration has
// passed or ctx ends.
func (b *bench) publish(ctx context.Context, ph *phase, e expectations) {
	start := time.Now()
	var wg sync.WaitGroup
	pad := bytes.Repeat([]byte("x"), b.cfg.Payload)
	messages, rate := b.cfg.phaseLimits(ph.id)
	for range b.cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.cfg.Batch > 1 {
				b.publishBatches(ctx, ph, e, start, pad, messages, rate)
				return
			}
			for ctx.Err() == nil {
				seq := ph.nextSeq.Add(1) - 1
				if messages > 0 && seq >= int64(messages) {
					return
				}
				if !b.awaitTurn(ctx, start, seq, rate) {
					return
				}
				m := ph.slot(seq)
				if m == nil {
					return
				}
				b.publishOne(ctx, ph, e, seq, m, pad)
			}
		}()
	}
	wg.Wait()
}

func (b *bench) publishOne(ctx context.Context, ph *phase, e expectations, seq int64, m *msgState, pad []byte) {
	req := b.prepare(ph, e, seq, m, pad)
	node := b.cfg.Nodes[b.apiNodes[int(seq%int64(len(b.apiNodes)))]]
	t0 := time.Now()
	res, err := b.send(ctx, node, req)
	ph.apiCall.Record(time.Since(t0))
	if err != nil {
		ph.sendErr.Add(1)
		ph.noteError(err.Error())
		return
	}
	ph.sent.Add(1)
	m.apiDelivered.Store(int32(res.Delivered))
}

// prepare makes message seq of ph ready to send: its target, what it
// expects, its send time in m and in the phase, and its send body.
func (b *bench) prepare(ph *phase, e expectations, seq int64, m *msgState, pad []byte) sendRequest {
	key, to, expected := b.target(ph.mode, seq, e)
	now := time.Now().UnixNano()
	m.sentAt.Store(now)
	m.expected.Store(int32(expected))
	ph.expectedTotal.Add(int64(expected))
	atomicMinNonZero(&ph.firstSend, now)
	req := sendRequest{
		To:    to,
		Event: b.cfg.Event,
		Data:  formatPayload(b.runID, ph.id, seq, now, key, pad),
	}
	if ph.qos {
		req.QoS = true
		req.TTL = b.cfg.TTL
	}
	return req
}

// send posts one message through the server API.
func (b *bench) send(ctx context.Context, node string, body sendRequest) (sendResponse, error) {
	data, err := postSend(ctx, b.http, b.cfg, node, body, 1<<16)
	if err != nil {
		return sendResponse{}, fmt.Errorf("send: %w", err)
	}
	var res sendResponse
	if err := json.Unmarshal(data, &res); err != nil {
		return sendResponse{}, fmt.Errorf("send: answer %q: %w", data, err)
	}
	return res, nil
}

// postSend posts body — one send or a batch — as JSON to node's send API
// with cfg's app and key and returns the answer (at most limit bytes); an
// answer other than 200 is an error with its text.
func postSend(ctx context.Context, client *http.Client, cfg Config, node string, body any, limit int64) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node+"/api/v1/apps/"+cfg.App+"/send", bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, errors.New(shortErr(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, errors.New("read answer: " + shortErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return data, nil
}

// awaitTurn waits until message seq is due at rate messages per second
// from start (at once when rate is 0); false when the phase's -duration
// is over, or would be by then, or ctx ended.
func (b *bench) awaitTurn(ctx context.Context, start time.Time, seq int64, rate float64) bool {
	if b.cfg.Duration > 0 && time.Since(start) >= b.cfg.Duration {
		return false
	}
	if rate <= 0 {
		return true
	}
	due := start.Add(time.Duration(float64(seq) * float64(time.Second) / rate))
	if b.cfg.Duration > 0 && due.Sub(start) >= b.cfg.Duration {
		return false
	}
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

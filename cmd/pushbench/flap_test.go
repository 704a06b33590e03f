package main

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// The flap scenario, small: 60 subscribers on three nodes dropped every
// ~0.6 s for ~0.3 s while channel and user events flow. With history in
// Redis every subscriber gets everything once and in order, and each
// reconnect says it resumed; without history the drops lose events.
func TestFlapScenario(t *testing.T) {
	redis := testredis.Binary(t)
	rep := smallRun(t, func(c *Config) {
		c.Conns, c.Channels, c.SpawnNodes, c.SpawnRedis = 60, 6, 3, redis
		c.Duration, c.Publishers = 4*time.Second, 2
		c.Flap = FlapConfig{On: true, Variants: []string{historyRedis, historyOff},
			Up: 600 * time.Millisecond, Down: 300 * time.Millisecond, ChannelRate: 60, UserRate: 60}
	})
	if !rep.OK() {
		t.Fatalf("not OK: %v", rep.Problems())
	}
	fr := rep.Flap
	if fr == nil || len(fr.Variants) != 2 {
		t.Fatalf("flap report %+v, want two variants", fr)
	}
	with, without := fr.Variants[0], fr.Variants[1]
	if with.Drops == 0 || with.Reconnects == 0 || with.ResumedTrue != with.Reconnects || with.ResumedFalse != 0 || with.Gaps != 0 {
		t.Errorf("with history: %d drops, %d reconnects, resumed %d/%d, %d gaps; want every reconnect resumed",
			with.Drops, with.Reconnects, with.ResumedTrue, with.ResumedFalse, with.Gaps)
	}
	if with.Expected == 0 || with.Unique != with.Expected || with.PerSubscriber.Complete != 60 || with.Duplicated != 0 || with.OrderViolations != 0 {
		t.Errorf("with history: %d of %d, %d complete, %d duplicated, %d out of order",
			with.Unique, with.Expected, with.PerSubscriber.Complete, with.Duplicated, with.OrderViolations)
	}
	if with.CatchUp.Count == 0 {
		t.Error("with history: no catch-up measured")
	}
	if without.Drops == 0 || without.Unique >= without.Expected || without.DeliveryPct <= 0 {
		t.Errorf("without history: %d drops, %d of %d delivered; want losses", without.Drops, without.Unique, without.Expected)
	}
}

// The Last-Event-ID of the parser is the id as of the last blank line, as
// an EventSource's: a bare id block counts, a block cut off does not.
func TestParserLastEventID(t *testing.T) {
	p := newSSEParser(bufio.NewReader(strings.NewReader("id: a\ndata: x\n\nid: b\n\nid: c\ndata: y\n")), 0)
	if ev, err := p.Next(); err != nil || ev.ID != "a" || p.LastEventID() != "a" {
		t.Fatalf("first event %v (%v), last event id %q", ev, err, p.LastEventID())
	}
	if _, err := p.Next(); err == nil {
		t.Fatal("the cut-off block was dispatched")
	}
	if got := p.LastEventID(); got != "b" {
		t.Fatalf("last event id %q, want b (the bare id block, not the cut-off c)", got)
	}
}

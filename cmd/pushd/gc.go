package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Automatic GC target (gc_percent: 0, the default). A push server's heap
// is mostly its idle connections. While it is small the runtime's minimum
// heap goal dominates its memory, and a tight target (50) keeps a few
// thousand connections cheap; once it is large, the extra collections a
// tight target costs are what dominates (about a fifth of the CPU of API
// sends at 10 000 connections), and the default target (100) pays off.
const (
	gcSmallPercent = 50
	gcLargePercent = 100
	gcLargeHeap    = 8 << 20 // live heap from which the target is gcLargePercent
	gcSmallHeap    = 6 << 20 // and below which it is gcSmallPercent again
	gcCheckEvery   = 2 * time.Second
)

// gcTuner sets the GC target from the live heap size, with hysteresis so
// that a heap near the threshold does not flip it back and forth.
type gcTuner struct {
	set     func(percent int) int // debug.SetGCPercent
	percent int                   // the target in force
}

func newGCTuner() *gcTuner {
	t := &gcTuner{set: debug.SetGCPercent}
	t.apply(gcSmallPercent)
	return t
}

// step chooses the target for a live heap of live bytes and returns it.
func (t *gcTuner) step(live uint64) int {
	switch {
	case t.percent == gcSmallPercent && live >= gcLargeHeap:
		t.apply(gcLargePercent)
	case t.percent == gcLargePercent && live < gcSmallHeap:
		t.apply(gcSmallPercent)
	}
	return t.percent
}

func (t *gcTuner) apply(percent int) {
	t.set(percent)
	t.percent = percent
}

// Run reads the live heap every gcCheckEvery until ctx ends.
func (t *gcTuner) Run(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tick := time.NewTicker(gcCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				t.step(sample[0].Value.Uint64())
			}
		}
	}
}

package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Automatic GC target (gc_percent: 0, the default). A push server's heap
// is mostly its idle connections, and its RSS is that heap times the GC
// target's headroom. While the heap is small the runtime's minimum heap
// goal dominates its memory, and a tight target (50) keeps a few thousand
// connections cheap; once it is large, the extra collections a tight
// target costs are what dominates a busy node (about a fifth of the CPU of
// API sends at 10 000 connections), and the default target (100) pays
// off. But a node that allocates little — idle connections, heartbeats, a
// trickle of sends — collects rarely whatever its target: once it has
// allocated less than 1/64 of its live heap per second for a second, the
// target is gcIdlePercent and the memory the heap no longer needs goes
// back to the system, once, so that idle connections cost their live heap
// and a quarter instead of about twice it. It has its busy target again at
// the first check that sees it allocate twice that rate, or at the first
// automatic collection within gcBusyGap of the previous one. And a busy
// node whose live heap is small for what it allocates — one that takes API
// calls or serves peers and holds few connections — would collect tens of
// times a second at these targets (the runtime's minimum heap goal is 4 MiB
// at 100) and spend a fifth of its CPU on it: its target is raised so that
// it collects about gcMaxCycles times a second, with a heap goal of at most
// gcMaxGoal. Not while its live heap grows (by more than an eighth and
// gcGrowthFloor from one check to the next): a node taking a storm of
// connects allocates fast too, but what it allocates stays, and collecting
// it seldom would leave the connections' records spread over more memory
// than they need once idle (a fifth more per connection after 10 000
// connects in one go).
const (
	gcSmallPercent = 50
	gcLargePercent = 100
	gcIdlePercent  = 25
	gcLargeHeap    = 8 << 20 // live heap from which the busy target is gcLargePercent
	gcSmallHeap    = 6 << 20 // and below which it is gcSmallPercent again
	gcCheckEvery   = 500 * time.Millisecond
	// A busy node's target is raised to collect at most gcMaxCycles times
	// a second at the allocation rate of the last check, in steps of
	// gcPercentStep (so that a rate that moves a little does not move
	// it), to at most gcMaxPercent (a live heap that grows a lot before
	// the next check grows its goal at most that much) and never to a
	// heap goal above gcMaxGoal.
	gcMaxCycles   = 4
	gcPercentStep = 50
	gcMaxPercent  = 800
	gcMaxGoal     = 64 << 20
	// gcGrowthFloor: a live heap that grew by less than this from one
	// check to the next is not growing, whatever the share (a small heap
	// moves by more than an eighth from collection to collection).
	gcGrowthFloor = 2 << 20
	// Quiet: a check that saw less than the live heap / gcQuietShare
	// allocated (1/64 of it per second); gcQuietChecks of them in a row
	// make the node idle, and a check that saw twice as much (or more)
	// busy again. At gcIdlePercent a quiet node collects at most every
	// 16 s. (A broadcast of 5 sends/s to 10 000 connections allocates
	// about 1/16 of their heap per second: at the idle target it would
	// collect every 4 s, some 5 % more CPU per delivery than at 100.)
	gcQuietShare  = 128
	gcQuietChecks = 2
	// An automatic collection within gcBusyGap of the previous one (or of
	// the start of the idle target) ends it too: the node allocates at
	// least twice the quiet rate, and this sees it at its first
	// collections, before the next check.
	gcBusyGap = 8 * time.Second
)

// gcTuner sets the GC target from the live heap size and the allocation
// rate, with hysteresis so that a heap near the threshold does not flip it
// back and forth.
type gcTuner struct {
	set     func(percent int) int // debug.SetGCPercent
	release func()                // debug.FreeOSMemory

	mu        sync.Mutex
	percent   int                    // the target in force
	large     bool                   // the live heap is large (hysteresis between gcSmallHeap and gcLargeHeap)
	live      uint64                 // the live heap of the last check
	rate      uint64                 // bytes allocated per second at the last check
	growing   bool                   // the live heap grew by more than an eighth and gcGrowthFloor at the last check
	quiet     int                    // quiet checks in a row
	lastCycle time.Time              // of the last automatic collection seen, or of the start of the idle target
	automatic uint64                 // automatic collections counted so far
	seen      func(automatic uint64) // tests: told of each automatic collection
}

func newGCTuner() *gcTuner {
	t := &gcTuner{set: debug.SetGCPercent, release: debug.FreeOSMemory}
	t.apply(gcSmallPercent)
	return t
}

// busyPercent is the target while the node allocates: by the live heap's
// size, or higher when that would collect more than gcMaxCycles times a
// second.
func (t *gcTuner) busyPercent() int {
	base := gcSmallPercent
	if t.large {
		base = gcLargePercent
	}
	if t.live == 0 || t.live >= gcMaxGoal || t.growing {
		return base
	}
	want := t.rate * 100 / (t.live * gcMaxCycles) // the headroom allocated in 1/gcMaxCycles s
	want = (want + gcPercentStep - 1) / gcPercentStep * gcPercentStep
	limit := (gcMaxGoal - t.live) * 100 / t.live
	return max(base, int(min(want, gcMaxPercent, limit)))
}

// step takes a check's reading — the live heap, bytes allocated since the
// previous check — chooses the target and returns it.
func (t *gcTuner) step(live, allocated uint64, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.growing = live > t.live+max(t.live/8, gcGrowthFloor)
	t.live, t.rate = live, uint64(float64(allocated)/gcCheckEvery.Seconds())
	switch {
	case !t.large && live >= gcLargeHeap:
		t.large = true
	case t.large && live < gcSmallHeap:
		t.large = false
	}
	switch {
	case allocated*gcQuietShare < live:
		t.quiet++
	case t.percent == gcIdlePercent && allocated*gcQuietShare < 2*live:
		// Between the quiet rate and twice it: idle stays idle.
	default:
		t.quiet = 0
	}
	switch {
	case t.quiet < gcQuietChecks:
		t.apply(t.busyPercent())
	case t.percent != gcIdlePercent:
		t.apply(gcIdlePercent)
		t.lastCycle = now
		t.release()
	}
	return t.percent
}

// cycle takes a collection's end: automatic is the count of automatic
// collections so far (a forced one leaves it unchanged). A collection soon
// after the previous one ends the idle target.
func (t *gcTuner) cycle(automatic uint64, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if automatic == t.automatic {
		return t.percent
	}
	t.automatic = automatic
	if t.seen != nil {
		t.seen(automatic)
	}
	if t.percent == gcIdlePercent && now.Sub(t.lastCycle) < gcBusyGap {
		t.quiet = 0
		t.apply(t.busyPercent())
	}
	t.lastCycle = now
	return t.percent
}

func (t *gcTuner) apply(percent int) {
	if percent != t.percent {
		t.set(percent)
		t.percent = percent
	}
}

// Run reads the heap every gcCheckEvery, and after every collection, until
// ctx ends.
func (t *gcTuner) Run(ctx context.Context) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/cycles/automatic:gc-cycles"},
	}
	read := func() (live, allocs, automatic uint64) {
		metrics.Read(samples)
		v := [3]uint64{}
		for i, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v[i] = s.Value.Uint64()
			}
		}
		return v[0], v[1], v[2]
	}
	var mu sync.Mutex // the samples
	_, lastAllocs, automatic := read()
	t.mu.Lock()
	t.automatic = automatic
	t.mu.Unlock()

	var stopped atomic.Bool
	var watch func()
	watch = func() { // once per collection, from the runtime's cleanup goroutine
		if stopped.Load() {
			return
		}
		sentinel := new(gcSentinel)
		runtime.AddCleanup(sentinel, func(struct{}) {
			mu.Lock()
			_, _, automatic := read()
			mu.Unlock()
			t.cycle(automatic, time.Now())
			watch()
		}, struct{}{})
	}
	watch()
	defer stopped.Store(true)

	tick := time.NewTicker(gcCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			mu.Lock()
			live, allocs, _ := read()
			mu.Unlock()
			t.step(live, allocs-lastAllocs, now)
			lastAllocs = allocs
		}
	}
}

// gcSentinel is an object nothing keeps: its cleanup runs after the next
// collection. It holds a pointer so that it is not a tiny allocation,
// which shares its block with others and could outlive a collection.
type gcSentinel struct{ _ *byte }

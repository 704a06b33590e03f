package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// fakeTuner is a gcTuner that records what it tells the runtime.
func fakeTuner() (*gcTuner, *[]int, *int) {
	var set []int
	released := 0
	t := &gcTuner{set: func(p int) int { set = append(set, p); return 0 }, release: func() { released++ }}
	t.apply(gcSmallPercent)
	return t, &set, &released
}

// TestGCTunerHysteresis walks the live heap of a busy node up and down
// across the thresholds and checks the target set at each step.
func TestGCTunerHysteresis(t *testing.T) {
	tuner, set, _ := fakeTuner()
	now := time.Now()
	steps := []struct {
		live uint64
		want int
	}{
		{1 << 20, gcSmallPercent},
		{gcLargeHeap - 1, gcSmallPercent},
		{gcLargeHeap, gcLargePercent},
		{gcSmallHeap, gcLargePercent}, // between the thresholds: unchanged
		{gcSmallHeap - 1, gcSmallPercent},
		{gcLargeHeap - 1, gcSmallPercent},
		{64 << 20, gcLargePercent},
	}
	for i, s := range steps {
		now = now.Add(gcCheckEvery)
		if got := tuner.step(s.live, s.live, now); got != s.want { // allocating its heap every second
			t.Fatalf("step %d: live %d → %d, want %d", i, s.live, got, s.want)
		}
	}
	// The runtime is told only on changes.
	if want := []int{gcSmallPercent, gcLargePercent, gcSmallPercent, gcLargePercent}; !slices.Equal(*set, want) {
		t.Fatalf("set %v, want %v", *set, want)
	}
}

// TestGCTunerFastAllocation: a busy node that allocates its small heap
// many times a second gets a target at which it collects about gcMaxCycles
// times a second, bounded by gcMaxPercent and by a heap goal of gcMaxGoal;
// when it allocates less, its target by size again.
func TestGCTunerFastAllocation(t *testing.T) {
	tuner, set, _ := fakeTuner()
	now := time.Now()
	const mib = 1 << 20
	perCheck := func(perSecond uint64) uint64 { return uint64(float64(perSecond) * gcCheckEvery.Seconds()) }
	steps := []struct {
		live, perSecond uint64
		want            int
	}{
		{3 * mib, 40 * mib, gcSmallPercent},         // the first check: the heap grew from nothing
		{3 * mib, 40 * mib, 350},                    // 333 %: 10 MiB of headroom, allocated in a quarter second
		{3 * mib, 30 * mib, 250},                    // 250 %
		{3 * mib, 3 * mib, gcSmallPercent},          // a slow rate: by size
		{1 * mib, 100 * mib, gcMaxPercent},          // 2 500 % would do: bounded
		{40 * mib, 800 * mib, gcLargePercent},       // 60 % would reach gcMaxGoal: by size
		{20 * mib, 800 * mib, 220},                  // 1 000 % would do, bounded by the 64 MiB goal
		{gcMaxGoal, 8000 * mib, gcLargePercent},     // a heap as large as the goal: by size
		{4 * mib, 40 * mib, 250},                    // smaller again: 250 %
		{5 * mib, 40 * mib, 200},                    // 1 MiB more is not growing: 200 %
		{7*mib + 512<<10, 40 * mib, gcSmallPercent}, // 2.5 MiB more, and more than an eighth: growing, by size
		{7*mib + 768<<10, 40 * mib, 150},            // not growing: 129 % would do
	}
	want := []int{gcSmallPercent} // the initial target
	for i, s := range steps {
		now = now.Add(gcCheckEvery)
		got := tuner.step(s.live, perCheck(s.perSecond), now)
		if got != s.want {
			t.Fatalf("step %d: live %d MiB allocating %d MiB/s → %d, want %d", i, s.live/mib, s.perSecond/mib, got, s.want)
		}
		if goal := s.live * uint64(100+got) / 100; got > gcLargePercent && goal > gcMaxGoal {
			t.Fatalf("step %d: a heap goal of %d MiB", i, goal/mib)
		}
		if got != want[len(want)-1] {
			want = append(want, got)
		}
	}
	if !slices.Equal(*set, want) { // the runtime is told only on changes
		t.Fatalf("set %v, want %v", *set, want)
	}
}

// TestGCTunerIdle: a node that allocates little gets the idle target after
// gcQuietChecks checks and gives its free memory back once; allocating
// again (a check, or collections in quick succession) gives it its busy
// target back at once, and a collection now and then does not.
func TestGCTunerIdle(t *testing.T) {
	for _, live := range []uint64{2 << 20, 64 << 20} {
		tuner, set, released := fakeTuner()
		busy := gcSmallPercent
		if live >= gcLargeHeap {
			busy = gcLargePercent
		}
		now := time.Now()
		check := func(allocated uint64) int {
			now = now.Add(gcCheckEvery)
			return tuner.step(live, allocated, now)
		}
		quiet := live/gcQuietShare - 1
		if got := check(live); got != busy {
			t.Fatalf("live %d, allocating: %d, want %d", live, got, busy)
		}
		for i := 1; i < gcQuietChecks; i++ {
			if got := check(quiet); got != busy || *released != 0 {
				t.Fatalf("live %d, quiet check %d: %d (released %d), want still %d", live, i, got, *released, busy)
			}
		}
		if got := check(quiet); got != gcIdlePercent || *released != 1 {
			t.Fatalf("live %d, quiet %d checks: %d (released %d), want %d, released once", live, gcQuietChecks, got, *released, gcIdlePercent)
		}
		if got := check(0); got != gcIdlePercent || *released != 1 {
			t.Fatalf("live %d, still quiet: %d (released %d)", live, got, *released)
		}
		// A forced collection (the count of automatic ones unchanged)
		// and one automatic collection gcBusyGap after the last: still idle.
		if got := tuner.cycle(0, now.Add(time.Millisecond)); got != gcIdlePercent {
			t.Fatalf("live %d, forced collection: %d", live, got)
		}
		now = now.Add(gcBusyGap)
		if got := tuner.cycle(1, now); got != gcIdlePercent {
			t.Fatalf("live %d, a collection after %v: %d, want still idle", live, gcBusyGap, got)
		}
		// The next within gcBusyGap: busy.
		if got := tuner.cycle(2, now.Add(gcBusyGap-time.Millisecond)); got != busy {
			t.Fatalf("live %d, two collections within %v: %d, want %d", live, gcBusyGap, got, busy)
		}
		// Quiet again, then a check that allocates: busy at once.
		check(quiet)
		if got := check(quiet); got != gcIdlePercent || *released != 2 {
			t.Fatalf("live %d, quiet again: %d (released %d)", live, got, *released)
		}
		if got := check(live / gcQuietShare); got != gcIdlePercent {
			t.Fatalf("live %d, allocating a little more than quiet: %d, want still idle", live, got)
		}
		if got := check(2 * live / gcQuietShare); got != busy {
			t.Fatalf("live %d, allocating again: %d, want %d", live, got, busy)
		}
		want := []int{gcSmallPercent} // the initial target
		if busy != gcSmallPercent {
			want = append(want, busy)
		}
		want = append(want, gcIdlePercent, busy, gcIdlePercent, busy)
		if !slices.Equal(*set, want) {
			t.Fatalf("live %d: set %v, want %v", live, *set, want)
		}
	}
}

// TestGCTunerRun runs the tuner against the runtime: it sees automatic
// collections (its cleanup sentinel fires after each) and stops with its
// context.
func TestGCTunerRun(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuner := newGCTuner()
	seen := make(chan uint64, 1)
	tuner.seen = func(automatic uint64) {
		select {
		case seen <- automatic:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tuner.Run(ctx); close(done) }()
	timeout := time.After(10 * time.Second)
	var automatic uint64
wait:
	for {
		select {
		case automatic = <-seen:
			break wait
		case <-timeout:
			t.Fatal("the tuner saw no automatic collection in 10 s")
		default:
			sink = make([]byte, 64<<10) // until a collection comes
		}
	}
	cancel()
	<-done
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	if automatic == 0 || automatic > uint64(stats.NumGC-stats.NumForcedGC) {
		t.Errorf("the tuner counted %d automatic collections, the runtime %d", automatic, stats.NumGC-stats.NumForcedGC)
	}
}

var sink []byte

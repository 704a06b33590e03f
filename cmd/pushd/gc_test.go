package main

import "testing"

// TestGCTunerHysteresis walks the live heap up and down across the
// thresholds and checks the target set at each step.
func TestGCTunerHysteresis(t *testing.T) {
	var set []int
	tuner := &gcTuner{set: func(p int) int { set = append(set, p); return 0 }}
	tuner.apply(gcSmallPercent)
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
		if got := tuner.step(s.live); got != s.want {
			t.Fatalf("step %d: live %d → %d, want %d", i, s.live, got, s.want)
		}
	}
	// The runtime is told only on changes.
	want := []int{gcSmallPercent, gcLargePercent, gcSmallPercent, gcLargePercent}
	if len(set) != len(want) {
		t.Fatalf("set %v, want %v", set, want)
	}
	for i := range want {
		if set[i] != want[i] {
			t.Fatalf("set %v, want %v", set, want)
		}
	}
}
